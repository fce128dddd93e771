using System.Text.Json;
using OrderFunctions.Testing.FunctionsHost;

// Serves the Functions app through the real worker under the worker test host, as `func start` would:
//
//   dotnet OrderFunctions.WorkerHost.dll [--urls http://127.0.0.1:7071] [--settings local.settings.json] [--app <worker output>]
//
// App settings are local.settings.json's "Values", each overridden by an environment variable of the same name;
// timers fire on their schedules. Ctrl-C or SIGTERM sends the worker WorkerTerminate and stops.
var urls = Argument("--urls") ?? "http://127.0.0.1:7071";
var settingsFile = Argument("--settings") ?? "local.settings.json";
var settings = new Dictionary<string, string>(StringComparer.Ordinal);
if (File.Exists(settingsFile))
{
    using var document = JsonDocument.Parse(File.ReadAllText(settingsFile), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
    foreach (var value in document.RootElement.GetProperty("Values").EnumerateObject())
    {
        settings[value.Name] = Environment.GetEnvironmentVariable(value.Name) ?? (value.Value.ValueKind == JsonValueKind.String ? value.Value.GetString()! : value.Value.GetRawText());
    }
}
else
{
    Console.Error.WriteLine($"warning: {settingsFile} not found: the worker gets the environment only");
}

using var stopping = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stopping.Cancel();
};
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stopping.Cancel();
});

try
{
    await using var host = await FunctionsWorkerHost.StartAsync(new FunctionsHostOptions
    {
        AppDirectory = Argument("--app") ?? FunctionsWorkerHost.BuiltAppDirectory,
        Settings = settings,
        HttpAddress = new Uri(urls),
        RunTimersOnSchedule = true,
        Output = Console.Error.WriteLine,
    }, stopping.Token);
    Console.Error.WriteLine($"Functions worker test host: {host.Functions.Count} functions on {host.BaseAddress} (worker up in {host.StartupTime.TotalMilliseconds:0} ms)");
    try
    {
        await Task.Delay(Timeout.Infinite, stopping.Token);
    }
    catch (OperationCanceledException)
    {
        Console.Error.WriteLine("Stopping the worker...");
    }

    return 0;
}
catch (FunctionsHostException e)
{
    Console.Error.WriteLine("error: " + e.Message);
    return 1;
}

string? Argument(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}
