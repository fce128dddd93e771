using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OrderFunctions.Testing;

/// <summary>Runs short-lived helper programs (initdb, pg_ctl, chown) and fails with their output.</summary>
internal static class Commands
{
    public static bool IsRoot { get; } = !OperatingSystem.IsWindows() && Environment.UserName == "root";

    public static async Task<string> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"cannot start {fileName}");
        process.StandardInput.Close();
        var output = new StringBuilder();
        var stdout = PumpAsync(process.StandardOutput, output);
        var stderr = PumpAsync(process.StandardError, output);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
            await Task.WhenAll(stdout, stderr);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Describe(startInfo)} did not finish within {timeout.TotalSeconds:0} s: {Tail(output)}");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Describe(startInfo)} exited with {process.ExitCode}: {Tail(output)}");
        }

        return Tail(output);
    }

    /// <summary>Where on PATH a program is, or null.</summary>
    public static string? Which(string program)
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago; a server bound to it may still lose a race, so callers retry.</summary>
    public static int FreeLoopbackPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static async Task PumpAsync(StreamReader reader, StringBuilder sink)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (sink)
            {
                sink.AppendLine(line);
            }
        }
    }

    private static string Describe(ProcessStartInfo startInfo) => string.Join(' ', [startInfo.FileName, .. startInfo.ArgumentList]);

    private static string Tail(StringBuilder output)
    {
        lock (output)
        {
            var text = output.ToString().Trim();
            return text.Length <= 4000 ? text : "..." + text[^4000..];
        }
    }
}
