using System.Diagnostics;

namespace OrderFunctions.Testing;

/// <summary>
/// A detached shell that blocks reading a pipe only this process holds, then runs a cleanup command and
/// deletes a directory. The pipe closes when this process exits however it exits (normally, on a signal,
/// or killed by a test runner's hang timeout), so servers started for tests never outlive the run.
/// <see cref="Release"/> runs the cleanup now and waits for it.
/// </summary>
internal sealed class ExitWatchdog
{
    // $1 = directory to delete, $2.. = cleanup command. Signals aimed at the test run's process group are ignored:
    // the cleanup must run after the test process is gone, not die with it.
    private const string Script = """
        trap '' INT HUP TERM
        exec >/dev/null 2>&1
        cat
        dir=$1
        shift
        "$@"
        rm -rf -- "$dir"
        """;

    private readonly Process _process;

    private ExitWatchdog(Process process) => _process = process;

    public static ExitWatchdog Start(string directoryToDelete, IReadOnlyList<string> cleanupCommand)
    {
        var setsid = Commands.Which("setsid");
        var startInfo = new ProcessStartInfo(setsid ?? "/bin/sh")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // setsid puts the watchdog in its own session, out of reach of a Ctrl+C sent to the test run.
        string[] arguments = setsid is null
            ? ["-c", Script, "watchdog", directoryToDelete, .. cleanupCommand]
            : ["--wait", "/bin/sh", "-c", Script, "watchdog", directoryToDelete, .. cleanupCommand];
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        return new ExitWatchdog(Process.Start(startInfo) ?? throw new InvalidOperationException("cannot start the cleanup watchdog"));
    }

    /// <summary>Runs the cleanup now and waits for it to finish.</summary>
    public void Release(TimeSpan timeout)
    {
        try
        {
            _process.StandardInput.Close();
            _process.WaitForExit(timeout);
        }
        catch (InvalidOperationException)
        {
            // Already released.
        }
    }
}
