using System.Text.RegularExpressions;
using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Core.Api;
using OrderFunctions.Core.Http;
using YamlDotNet.RepresentationModel;

namespace OrderFunctions.Api.Tests;

/// <summary>docs/openapi.yaml describes exactly the routes the host serves (LocalHost or the Functions app), with their access and error shapes.</summary>
public sealed partial class OpenApiDocumentTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    private static readonly string[] HttpMethods = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];
    private static readonly Lazy<YamlMappingNode> Document = new(Load);

    [Fact]
    public void Document_is_OpenAPI_3_1_with_a_bearer_JWT_scheme_required_by_default()
    {
        Assert.StartsWith("3.1.", Scalar(Document.Value, "openapi"), StringComparison.Ordinal);
        var scheme = Map(Map(Map(Document.Value, "components"), "securitySchemes"), "bearerAuth");
        Assert.Equal("http", Scalar(scheme, "type"));
        Assert.Equal("bearer", Scalar(scheme, "scheme"));
        Assert.Equal("JWT", Scalar(scheme, "bearerFormat"));
        var security = Assert.IsType<YamlSequenceNode>(Document.Value.Children[new YamlScalarNode("security")]);
        Assert.Contains(security.Children.OfType<YamlMappingNode>(), s => s.Children.ContainsKey(new YamlScalarNode("bearerAuth")));
    }

    [Fact]
    public void Document_has_every_route_the_host_serves_and_no_other()
    {
        var served = ServedOperations().Keys.ToHashSet();
        var documented = DocumentedOperations().Keys.ToHashSet();

        var undocumented = served.Except(documented).Order().ToList();
        var unserved = documented.Except(served).Order().ToList();

        Assert.True(undocumented.Count == 0, "served but missing from docs/openapi.yaml: " + string.Join(", ", undocumented));
        Assert.True(unserved.Count == 0, $"in docs/openapi.yaml but not served by the {api.Host.Kind} host: " + string.Join(", ", unserved));
        Assert.All(documented, operation => Assert.Contains(" /api/", operation, StringComparison.Ordinal));
    }

    [Fact]
    public void Each_operation_is_named_after_its_endpoint()
    {
        var served = ServedOperations();

        foreach (var (operation, node) in DocumentedOperations())
        {
            Assert.True(served.TryGetValue(operation, out var endpointName), $"{operation} is not served");
            Assert.Equal(endpointName, Scalar(node, "operationId"));
        }
    }

    [Fact]
    public void Admin_routes_are_marked_and_require_the_admin_role_and_health_is_anonymous()
    {
        var endpoints = CoreApi.Endpoints;
        var documented = DocumentedOperations();

        foreach (var endpoint in endpoints)
        {
            Assert.True(documented.TryGetValue($"{endpoint.Method} /{endpoint.Route}", out var operation),
                $"{endpoint.Method} /{endpoint.Route} is not in docs/openapi.yaml");
            var marked = operation.Children.TryGetValue(new YamlScalarNode("x-admin"), out var admin) && ((YamlScalarNode)admin).Value == "true";
            var responses = Map(operation, "responses").Children.Keys.Select(k => ((YamlScalarNode)k).Value!).ToList();
            switch (endpoint.Access)
            {
                case Access.Admin:
                    Assert.True(marked, $"{endpoint.Name} is an admin route without x-admin: true");
                    Assert.Equal(["orders.admin"], SecurityRoles(operation));
                    Assert.Contains("401", responses);
                    Assert.Contains("403", responses);
                    break;
                case Access.Trader:
                    Assert.False(marked, $"{endpoint.Name} is marked admin");
                    Assert.False(operation.Children.ContainsKey(new YamlScalarNode("security")), $"{endpoint.Name} overrides the default security");
                    Assert.Contains("401", responses);
                    break;
                default:
                    Assert.False(marked);
                    // Anonymous: no security, or an empty requirement ({}) beside an optional one (health shows an admin more).
                    var security = Assert.IsType<YamlSequenceNode>(operation.Children[new YamlScalarNode("security")]);
                    Assert.True(security.Children.Count == 0 || security.Children.Any(r => r is YamlMappingNode { Children.Count: 0 }),
                        $"{endpoint.Name} is anonymous but its security requires a token");
                    Assert.DoesNotContain("401", responses);
                    break;
            }
        }
    }

    [Fact]
    public void Path_parameters_are_declared_for_every_placeholder()
    {
        foreach (var (operation, node) in DocumentedOperations())
        {
            var path = operation[(operation.IndexOf(' ', StringComparison.Ordinal) + 1)..];
            var declared = Parameters(node).Where(p => Scalar(p, "in") == "path").ToList();
            var placeholders = Placeholder().Matches(path).Select(m => m.Groups[1].Value).ToList();

            Assert.Equal(placeholders.Order(), declared.Select(p => Scalar(p, "name")).Order());
            Assert.All(declared, p => Assert.Equal("true", Scalar(p, "required")));
        }
    }

    [Fact]
    public void Envelope_and_problem_schemas_have_the_members_every_response_carries()
    {
        var schemas = Map(Map(Document.Value, "components"), "schemas");

        Assert.Equal(["data", "error_code", "error_message", "status", "success", "timestamp"],
            Required(Map(schemas, "Envelope")).Order());
        var problem = (YamlSequenceNode)Map(schemas, "Problem").Children[new YamlScalarNode("allOf")];
        Assert.Equal("#/components/schemas/Envelope", Scalar((YamlMappingNode)problem.Children[0], "$ref"));
        Assert.Equal(["detail", "status", "title", "type"], Required((YamlMappingNode)problem.Children[1]).Order());
    }

    [Fact]
    public void Error_codes_in_the_document_are_exactly_those_the_API_can_answer()
    {
        var schemas = Map(Map(Document.Value, "components"), "schemas");
        var documented = ((YamlSequenceNode)Map(schemas, "ErrorCode").Children[new YamlScalarNode("enum")]).Children
            .Select(c => ((YamlScalarNode)c).Value!).ToHashSet(StringComparer.Ordinal);
        var answerable = AnswerableErrorCodes();

        Assert.True(answerable.Count > 10, "found too few error codes in db/migrations and functions/: " + string.Join(", ", answerable));
        Assert.True(answerable.SetEquals(documented),
            "no code answers " + string.Join(", ", documented.Except(answerable).Order()) +
            "; undocumented: " + string.Join(", ", answerable.Except(documented).Order()));
    }

    [Fact]
    public void Every_code_the_API_can_answer_has_a_status_and_title_and_no_other_code_has()
    {
        var answerable = AnswerableErrorCodes();

        Assert.Equal(answerable.Order(StringComparer.Ordinal), ErrorCodes.All.Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// What a response can carry as error_code, read from the product: the codes the stored functions answer
    /// (error_envelope('X', ...), validation_error's envelope(false, 'X', ...), and a code variable assigned 'X'
    /// before it is enveloped) and the codes the C# layer answers itself (ErrorCodes.X anywhere in functions/).
    /// </summary>
    private static HashSet<string> AnswerableErrorCodes()
    {
        var root = RepositoryRoot();
        var codes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var script in Directory.EnumerateFiles(Path.Combine(root, "db", "migrations"), "*.sql"))
        {
            foreach (Match match in SqlErrorCode().Matches(File.ReadAllText(script)))
            {
                codes.Add(match.Groups["code"].Value);
            }
        }

        foreach (var source in Directory.EnumerateFiles(Path.Combine(root, "functions"), "*.cs", SearchOption.AllDirectories))
        {
            if (Path.GetFileName(source) == nameof(ErrorCodes) + ".cs" || source.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            {
                continue;
            }

            foreach (Match match in CSharpErrorCode().Matches(File.ReadAllText(source)))
            {
                if (typeof(ErrorCodes).GetField(match.Groups["name"].Value) is { IsLiteral: true } constant)
                {
                    codes.Add((string)constant.GetRawConstantValue()!);
                }
            }
        }

        return codes;
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "global.json")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no global.json above {AppContext.BaseDirectory}: run the tests inside the repository");
    }

    [GeneratedRegex(@"(?:error_envelope\(\s*|envelope\(\s*false\s*,\s*|\b\w*code\w*\s*:=\s*)'(?<code>[A-Z][A-Z_]+)'")]
    private static partial Regex SqlErrorCode();

    [GeneratedRegex(@"(?<![\w.])ErrorCodes\.(?<name>\w+)")]
    private static partial Regex CSharpErrorCode();

    [Fact]
    public void Every_reference_resolves()
    {
        var references = new List<string>();
        Collect(Document.Value, references);

        Assert.NotEmpty(references);
        foreach (var reference in references.Distinct())
        {
            Assert.StartsWith("#/", reference, StringComparison.Ordinal);
            YamlNode node = Document.Value;
            foreach (var part in reference[2..].Split('/'))
            {
                Assert.True(node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(part), out node!),
                    $"{reference} does not resolve");
            }
        }
    }

    /// <summary>"METHOD /path" of every operation the host serves (LocalHost's endpoints, the worker's HTTP functions), with its name.</summary>
    private Dictionary<string, string?> ServedOperations()
    {
        var operations = new Dictionary<string, string?>(api.Host.ServedOperations(), StringComparer.Ordinal);
        Assert.NotEmpty(operations);
        return operations;
    }

    /// <summary>"METHOD /path" of every operation in the document, with its node.</summary>
    private static Dictionary<string, YamlMappingNode> DocumentedOperations()
    {
        var operations = new Dictionary<string, YamlMappingNode>(StringComparer.Ordinal);
        foreach (var (path, item) in Map(Document.Value, "paths").Children)
        {
            foreach (var (method, operation) in ((YamlMappingNode)item).Children)
            {
                var name = ((YamlScalarNode)method).Value!;
                if (HttpMethods.Contains(name))
                {
                    operations.Add($"{name.ToUpperInvariant()} {((YamlScalarNode)path).Value}", (YamlMappingNode)operation);
                }
            }
        }

        return operations;
    }

    private static IEnumerable<YamlMappingNode> Parameters(YamlMappingNode operation)
    {
        if (!operation.Children.TryGetValue(new YamlScalarNode("parameters"), out var parameters))
        {
            yield break;
        }

        foreach (YamlMappingNode parameter in ((YamlSequenceNode)parameters).Children)
        {
            yield return parameter.Children.TryGetValue(new YamlScalarNode("$ref"), out var reference)
                ? Resolve(((YamlScalarNode)reference).Value!)
                : parameter;
        }
    }

    private static List<string> SecurityRoles(YamlMappingNode operation)
    {
        var security = Assert.IsType<YamlSequenceNode>(operation.Children[new YamlScalarNode("security")]);
        var requirement = Assert.IsType<YamlMappingNode>(Assert.Single(security.Children));
        var roles = Assert.IsType<YamlSequenceNode>(requirement.Children[new YamlScalarNode("bearerAuth")]);
        return roles.Children.Select(r => ((YamlScalarNode)r).Value!).ToList();
    }

    private static IEnumerable<string> Required(YamlMappingNode schema) =>
        ((YamlSequenceNode)schema.Children[new YamlScalarNode("required")]).Children.Select(c => ((YamlScalarNode)c).Value!);

    private static YamlMappingNode Resolve(string reference)
    {
        var node = Document.Value;
        foreach (var part in reference[2..].Split('/'))
        {
            node = Map(node, part);
        }

        return node;
    }

    private static void Collect(YamlNode node, List<string> references)
    {
        switch (node)
        {
            case YamlMappingNode map:
                foreach (var (key, value) in map.Children)
                {
                    if (((YamlScalarNode)key).Value == "$ref" && value is YamlScalarNode reference)
                    {
                        references.Add(reference.Value!);
                    }
                    else
                    {
                        Collect(value, references);
                    }
                }

                break;
            case YamlSequenceNode sequence:
                foreach (var child in sequence.Children)
                {
                    Collect(child, references);
                }

                break;
        }
    }

    private static YamlMappingNode Map(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var child) && child is YamlMappingNode map
            ? map
            : throw new Xunit.Sdk.XunitException($"docs/openapi.yaml has no mapping '{key}' here");

    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var child) ? ((YamlScalarNode)child).Value : null;

    private static YamlMappingNode Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "openapi.yaml");
        using var reader = new StreamReader(path);
        var stream = new YamlStream();
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents.Single().RootNode;
    }

    [GeneratedRegex(@"\{([^}]+)\}")]
    private static partial Regex Placeholder();
}
