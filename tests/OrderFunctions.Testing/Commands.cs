using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OrderFunctions.Testing;

/// <summary>
/// Runs short-lived programs for the tests (initdb, pg_ctl, chown, the migration CLI, bicep): one process runner
/// for every test project. <see cref="RunAsync"/> fails with the program's output; <see cref="ExecuteAsync"/>
/// returns the exit code and both streams for tests that judge them.
/// </summary>
public static class Commands
{
    public static bool IsRoot { get; } = !OperatingSystem.IsWindows() && Environment.UserName == "root";

    /// <summary>Runs the program and returns the tail of its output; a non-zero exit or the timeout throws with it.</summary>
    public static async Task<string> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var run = await ExecuteAsync(fileName, arguments, timeout, cancellationToken: cancellationToken);
        if (run.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Describe(fileName, arguments)} exited with {run.ExitCode}: {run.Output}");
        }

        return run.Output;
    }

    /// <summary>
    /// Runs the program with standard input closed and returns its exit code and output; only the timeout throws.
    /// <paramref name="environment"/> sets variables, or removes those whose value is null.
    /// </summary>
    public static async Task<CommandRun> ExecuteAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
        string? workingDirectory = null, IReadOnlyDictionary<string, string?>? environment = null, CancellationToken cancellationToken = default)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (workingDirectory is not null)
        {
            startInfo.WorkingDirectory = workingDirectory;
        }

        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                startInfo.Environment.Remove(name);
            }
            else
            {
                startInfo.Environment[name] = value;
            }
        }

        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"cannot start {fileName}");
        process.StandardInput.Close();
        var output = new StringBuilder();
        var standardOutput = new StringBuilder();
        var standardError = new StringBuilder();
        var stdout = PumpAsync(process.StandardOutput, standardOutput, output);
        var stderr = PumpAsync(process.StandardError, standardError, output);
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
            throw new TimeoutException($"{Describe(fileName, startInfo.ArgumentList)} did not finish within {timeout.TotalSeconds:0} s: {Tail(output)}");
        }

        return new CommandRun(process.ExitCode, Text(standardOutput), Text(standardError), Tail(output));
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

    /// <summary>
    /// A TCP port on 127.0.0.1 that was free a moment ago: for a server to bind (it may still lose a race, so callers
    /// retry), or as a port nothing listens on.
    /// </summary>
    public static int FreeLoopbackPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static async Task PumpAsync(StreamReader reader, StringBuilder stream, StringBuilder interleaved)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (interleaved)
            {
                stream.AppendLine(line);
                interleaved.AppendLine(line);
            }
        }
    }

    private static string Describe(string fileName, IEnumerable<string> arguments) => string.Join(' ', [fileName, .. arguments]);

    // Read once both pumps have finished.
    private static string Text(StringBuilder stream) => stream.ToString().Trim();

    private static string Tail(StringBuilder output)
    {
        lock (output)
        {
            var text = output.ToString().Trim();
            return text.Length <= 4000 ? text : "..." + text[^4000..];
        }
    }
}

/// <summary>How a program ended: its exit code, each stream, and the tail of both interleaved.</summary>
public sealed record CommandRun(int ExitCode, string StandardOutput, string StandardError, string Output);
