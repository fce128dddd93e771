using System.Text.Json;

namespace OrderFunctions.Testing.FunctionsHost;

/// <summary>A function the worker indexed and loaded, read from its raw bindings as the host reads them.</summary>
public sealed record LoadedFunction(
    string Name,
    string FunctionId,
    string EntryPoint,
    string TriggerType,
    string TriggerBindingName,
    IReadOnlyList<string>? HttpMethods,
    string? Route,
    string? AuthLevel,
    string? Schedule,
    IReadOnlyList<string> RawBindings)
{
    public const string HttpTrigger = "httpTrigger";
    public const string TimerTrigger = "timerTrigger";

    public bool IsHttp => TriggerType.Equals(HttpTrigger, StringComparison.OrdinalIgnoreCase);

    public bool IsTimer => TriggerType.Equals(TimerTrigger, StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads the trigger binding (the one binding whose type ends in "Trigger") of a function's metadata.</summary>
    public static LoadedFunction FromMetadata(string name, string functionId, string entryPoint, IReadOnlyList<string> rawBindings)
    {
        foreach (var raw in rawBindings)
        {
            using var binding = JsonDocument.Parse(raw);
            var root = binding.RootElement;
            var type = root.GetProperty("type").GetString() ?? "";
            if (!type.EndsWith("Trigger", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            // An httpTrigger without "methods" accepts every method; without "route" its route is the function name.
            IReadOnlyList<string>? methods = root.TryGetProperty("methods", out var m) && m.ValueKind == JsonValueKind.Array
                ? m.EnumerateArray().Select(v => v.GetString()!.ToUpperInvariant()).ToList()
                : null;
            return new LoadedFunction(name, functionId, entryPoint, type, root.GetProperty("name").GetString()!,
                methods,
                root.TryGetProperty("route", out var route) && route.ValueKind == JsonValueKind.String ? route.GetString() : null,
                root.TryGetProperty("authLevel", out var auth) ? auth.GetString() : null,
                root.TryGetProperty("schedule", out var schedule) ? schedule.GetString() : null,
                rawBindings);
        }

        throw new InvalidOperationException($"function {name} declares no trigger binding: {string.Join(", ", rawBindings)}");
    }
}
