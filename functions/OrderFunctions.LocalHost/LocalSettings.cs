using System.Text.Json;

namespace OrderFunctions.LocalHost;

/// <summary>
/// Reads a Functions local.settings.json as configuration: its "Values" (A__B becomes A:B), and its "Host" section as
/// Host:Name (Host:CORS, the allowed browser origins, which `func start` applies too).
/// </summary>
internal static class LocalSettings
{
    public const string FileName = "local.settings.json";

    /// <summary>The nearest local.settings.json at or above <paramref name="start"/> (the repo root holds it).</summary>
    public static string? Find(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, FileName);
            if (File.Exists(candidate))
            {
                return candidate;
            }

            if (File.Exists(Path.Combine(dir.FullName, "global.json")))
            {
                break;
            }
        }

        return null;
    }

    public static Dictionary<string, string?> Read(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        if (document.RootElement.TryGetProperty("Values", out var section) && section.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in section.EnumerateObject())
            {
                values[property.Name.Replace("__", ":", StringComparison.Ordinal)] =
                    property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : property.Value.GetRawText();
            }
        }

        if (document.RootElement.TryGetProperty("Host", out var host) && host.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in host.EnumerateObject())
            {
                values["Host:" + property.Name] =
                    property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : property.Value.GetRawText();
            }
        }

        return values;
    }
}

internal sealed class LocalSettingsSource(string path) : IConfigurationSource
{
    public IConfigurationProvider Build(IConfigurationBuilder builder) => new Provider(path);

    private sealed class Provider(string path) : ConfigurationProvider
    {
        public override void Load() => Data = LocalSettings.Read(path);
    }
}
