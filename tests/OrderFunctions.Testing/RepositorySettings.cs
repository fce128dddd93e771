using System.Text.Json;

namespace OrderFunctions.Testing;

/// <summary>Values of local.settings.sample.json, the documented defaults, for tests that must use the same ones.</summary>
public static class RepositorySettings
{
    private static readonly Lazy<Dictionary<string, string>> Values = new(Load);

    /// <summary>The sample's value of an app setting.</summary>
    public static string Sample(string name) =>
        Values.Value.TryGetValue(name, out var value) ? value : throw new KeyNotFoundException($"local.settings.sample.json has no setting {name}");

    private static Dictionary<string, string> Load()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var sample = Path.Combine(directory.FullName, "local.settings.sample.json");
            if (File.Exists(sample))
            {
                using var document = JsonDocument.Parse(File.ReadAllText(sample));
                return document.RootElement.GetProperty("Values").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal);
            }
        }

        throw new InvalidOperationException($"no local.settings.sample.json above {AppContext.BaseDirectory}: run the tests inside the repository");
    }
}
