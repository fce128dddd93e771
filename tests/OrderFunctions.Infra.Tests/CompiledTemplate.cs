using System.Text.Json.Nodes;

namespace OrderFunctions.Infra.Tests;

/// <summary>main.bicep and main.bicepparam compiled to ARM JSON once for the tests that read them.</summary>
internal sealed class CompiledTemplate
{
    private static readonly Lazy<Task<CompiledTemplate>> Shared = new(CompileAsync);

    private CompiledTemplate(JsonObject template, JsonObject parameters, JsonObject testParameters)
    {
        Template = template;
        Parameters = parameters;
        TestParameters = testParameters;
    }

    /// <summary>The ARM template of main.bicep, modules inlined as nested deployments.</summary>
    public JsonObject Template { get; }

    /// <summary>The ARM parameters file main.bicepparam compiles to.</summary>
    public JsonObject Parameters { get; }

    /// <summary>The ARM parameters file infra/test.bicepparam (the named test deployment) compiles to.</summary>
    public JsonObject TestParameters { get; }

    /// <summary>A parameter's default value in main.bicep, or null when it has none.</summary>
    public JsonNode? DefaultOf(string parameter) => Template["parameters"]![parameter]!["defaultValue"];

    /// <summary>The value a compiled parameters file gives a parameter, or null when it does not set it.</summary>
    public static JsonNode? ValueIn(JsonObject parameters, string parameter) => parameters["parameters"]?[parameter]?["value"];

    /// <summary>What a parameter ends up as with a parameters file: its value there, else the template's default.</summary>
    public JsonNode? Effective(JsonObject parameters, string parameter) => ValueIn(parameters, parameter) ?? DefaultOf(parameter);

    /// <summary>The nested deployment of a module, by its deployment name.</summary>
    public JsonObject Module(string name) =>
        Resources("Microsoft.Resources/deployments").Single(d => d["name"]?.ToString() == name);

    public IReadOnlySet<string> ParameterNames => Template["parameters"]!.AsObject().Select(p => p.Key).ToHashSet(StringComparer.Ordinal);

    public IReadOnlySet<string> OutputNames => Template["outputs"]!.AsObject().Select(p => p.Key).ToHashSet(StringComparer.Ordinal);

    public IReadOnlySet<string> ParameterFileNames => Parameters["parameters"]!.AsObject().Select(p => p.Key).ToHashSet(StringComparer.Ordinal);

    public static Task<CompiledTemplate> GetAsync() => Shared.Value;

    /// <summary>Every JSON object anywhere in the template (resources, nested deployments, their parameters).</summary>
    public IEnumerable<JsonObject> AllObjects() => Descend(Template);

    /// <summary>The resources of a type, wherever they are declared (main template or a module).</summary>
    public IEnumerable<JsonObject> Resources(string type) =>
        AllObjects().Where(o => o["type"] is JsonValue t && t.TryGetValue(out string? s) && string.Equals(s, type, StringComparison.OrdinalIgnoreCase) && o["properties"] is JsonObject);

    /// <summary>The application settings main.bicep passes to the function app module, by name (values as ARM expressions).</summary>
    public IReadOnlyDictionary<string, string> AppSettings()
    {
        var settings = Resources("Microsoft.Resources/deployments")
            .Select(d => d["properties"]?["parameters"]?["appSettings"]?["value"])
            .OfType<JsonObject>()
            .ToList();
        Assert.True(settings.Count == 1, $"expected one module deployment with an appSettings parameter, found {settings.Count}");
        return settings[0].ToDictionary(p => p.Key, p => p.Value?.ToString() ?? "", StringComparer.Ordinal);
    }

    private static IEnumerable<JsonObject> Descend(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                yield return o;
                foreach (var child in o.SelectMany(p => Descend(p.Value)))
                {
                    yield return child;
                }

                break;
            case JsonArray a:
                foreach (var child in a.SelectMany(Descend))
                {
                    yield return child;
                }

                break;
        }
    }

    private static async Task<CompiledTemplate> CompileAsync()
    {
        var output = Directory.CreateTempSubdirectory("bicep-compiled-");
        try
        {
            var template = Path.Combine(output.FullName, "main.json");
            var parameters = Path.Combine(output.FullName, "main.parameters.json");
            var build = await BicepCli.RunAsync(null, "build", Repo.MainTemplate, "--outfile", template);
            Assert.True(build.ExitCode == 0, $"bicep build infra/main.bicep failed:\n{build.Diagnostics}");
            var buildParams = await BicepCli.RunAsync(BicepCli.EnvironmentFor(Repo.MainParameters), "build-params", Repo.MainParameters, "--outfile", parameters);
            Assert.True(buildParams.ExitCode == 0, $"bicep build-params infra/main.bicepparam failed:\n{buildParams.Diagnostics}");
            var testParameters = Path.Combine(output.FullName, "test.parameters.json");
            var buildTest = await BicepCli.RunAsync(BicepCli.EnvironmentFor(Repo.TestParameters), "build-params", Repo.TestParameters, "--outfile", testParameters);
            Assert.True(buildTest.ExitCode == 0, $"bicep build-params infra/test.bicepparam failed:\n{buildTest.Diagnostics}");
            return new CompiledTemplate(
                JsonNode.Parse(await File.ReadAllTextAsync(template))!.AsObject(),
                JsonNode.Parse(await File.ReadAllTextAsync(parameters))!.AsObject(),
                JsonNode.Parse(await File.ReadAllTextAsync(testParameters))!.AsObject());
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }
}
