namespace OrderFunctions.Testing.FunctionsHost;

/// <summary>How to start a <see cref="FunctionsWorkerHost"/>.</summary>
public sealed class FunctionsHostOptions
{
    /// <summary>The worker app's output directory (functions.metadata, worker.config.json, host.json, the app's dll).</summary>
    public string AppDirectory { get; init; } = FunctionsWorkerHost.BuiltAppDirectory;

    /// <summary>
    /// App settings: the worker's environment (beneath nothing: they win over the test process's environment), and the
    /// host's own settings: <c>FUNCTIONS_REQUEST_BODY_SIZE_LIMIT</c> and the <c>%SETTING%</c> names timer schedules use.
    /// </summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>Where the HTTP front listens, e.g. http://127.0.0.1:7071; null: a free loopback port.</summary>
    public Uri? HttpAddress { get; init; }

    /// <summary>Fire timer functions on their CRON schedules (as the host does); off: only <see cref="FunctionsWorkerHost.InvokeTimerAsync"/>.</summary>
    public bool RunTimersOnSchedule { get; init; }

    /// <summary>Where warnings, errors and failures are written as they happen (default: the test process's stderr).</summary>
    public Action<string> Output { get; init; } = TestLog.Write;

    /// <summary>Spawn to all functions loaded, at most.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(90);
}

/// <summary>One invocation the host sent, as a test can inspect it afterwards.</summary>
public sealed record InvocationRecord(string FunctionName, string InvocationId, string TraceParent, string Status, string? Error, TimeSpan Duration);

/// <summary>A failed start, load or invocation, with what the worker logged.</summary>
public sealed class FunctionsHostException(string message) : Exception(message);
