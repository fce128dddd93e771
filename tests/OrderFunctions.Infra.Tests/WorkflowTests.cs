using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace OrderFunctions.Infra.Tests;

/// <summary>
/// The GitHub workflows parse, pin what they run and only name files that exist: a moved project
/// or script breaks the workflow file here instead of in the middle of a release.
/// </summary>
public sealed partial class WorkflowTests
{
    /// <summary>Paths the workflows create themselves, so they need not exist in the repository.</summary>
    private static readonly HashSet<string> Produced = new(StringComparer.Ordinal)
    {
        "publish",
        "functions.zip",
    };

    public static TheoryData<string> Workflows => [.. Repo.Files(Repo.Workflows, "*.yml").Concat(Repo.Files(Repo.Workflows, "*.yaml"))];

    [Fact]
    public void Repository_has_the_ci_and_deploy_workflows()
    {
        Assert.True(File.Exists(Path.Combine(Repo.Workflows, "ci.yml")), ".github/workflows/ci.yml is missing");
        Assert.True(File.Exists(Path.Combine(Repo.Workflows, "deploy.yml")), ".github/workflows/deploy.yml is missing");
    }

    [Theory]
    [MemberData(nameof(Workflows))]
    public void Workflow_parses_and_declares_triggers_and_jobs_with_steps(string workflow)
    {
        var root = Load(workflow);

        Assert.True(root.Children.ContainsKey(new YamlScalarNode("on")), $"{workflow} has no 'on' triggers");
        var jobs = Assert.IsType<YamlMappingNode>(root.Children[new YamlScalarNode("jobs")]);
        Assert.NotEmpty(jobs.Children);
        Assert.All(jobs.Children, job => Assert.NotEmpty(Steps(job.Value)));
    }

    [Theory]
    [MemberData(nameof(Workflows))]
    public void Workflow_pins_every_action_to_a_full_version_or_a_commit(string workflow)
    {
        var unpinned = Steps(workflow)
            .Select(step => Scalar(step, "uses"))
            .OfType<string>()
            .Where(uses => !uses.StartsWith("./", StringComparison.Ordinal) && !PinnedAction().IsMatch(uses))
            .ToList();

        Assert.True(unpinned.Count == 0, $"{workflow} uses actions not pinned to vX.Y.Z or a 40-character commit: {string.Join(", ", unpinned)}");
    }

    [Theory]
    [MemberData(nameof(Workflows))]
    public void Workflow_pins_every_container_image_to_an_exact_version(string workflow)
    {
        var images = Descend(Load(workflow))
            .OfType<YamlMappingNode>()
            .Select(m => Scalar(m, "image"))
            .OfType<string>()
            .ToList();

        var floating = images.Where(image => !PinnedImage().IsMatch(image)).ToList();

        Assert.True(floating.Count == 0, $"{workflow} uses images without an exact version tag or digest: {string.Join(", ", floating)}");
    }

    [Theory]
    [MemberData(nameof(Workflows))]
    public void Workflow_references_only_paths_that_exist(string workflow)
    {
        var referenced = Steps(workflow)
            .SelectMany(step => new[] { Scalar(step, "run") }.Concat(With(step)))
            .OfType<string>()
            .SelectMany(PathsIn)
            .Distinct(StringComparer.Ordinal)
            .ToList();

        var missing = referenced.Where(path => !Produced.Contains(path) && !File.Exists(Repo.Full(path)) && !Directory.Exists(Repo.Full(path))).ToList();

        Assert.NotEmpty(referenced);
        Assert.True(missing.Count == 0, $"{workflow} references paths that do not exist in the repository: {string.Join(", ", missing)}");
    }

    [Fact]
    public void Ci_runs_the_repository_script_against_a_postgres_service()
    {
        var ci = File.ReadAllText(Path.Combine(Repo.Workflows, "ci.yml"));

        Assert.Contains("bash .ci/run", ci, StringComparison.Ordinal);
        Assert.Contains("ORDERS_TEST_POSTGRES", ci, StringComparison.Ordinal);
        Assert.Matches(@"image:\s*postgres:15\.\d+", ci);
    }

    [Fact]
    public void Deploy_runs_infrastructure_then_migrations_then_publishes()
    {
        var commands = Steps(".github/workflows/deploy.yml").Select(s => string.Join(' ', Scalar(s, "run"), Scalar(s, "uses"))).ToList();

        var infra = commands.FindIndex(s => s.Contains("az deployment group create", StringComparison.Ordinal));
        var migrate = commands.FindIndex(s => s.Contains("-- migrate", StringComparison.Ordinal));
        var grant = commands.FindIndex(s => s.Contains("-- grant-app", StringComparison.Ordinal));
        var publish = commands.FindIndex(s => s.Contains("dotnet publish", StringComparison.Ordinal));
        var deploy = commands.FindIndex(s => s.Contains("functions-action", StringComparison.Ordinal));

        Assert.True(infra >= 0 && migrate > infra && grant > migrate && publish > grant && deploy > publish, $"deploy.yml steps out of order: infra {infra}, migrate {migrate}, grant-app {grant}, publish {publish}, deploy {deploy}");
    }

    /// <summary>
    /// Relative paths in a script or input: tokens with a slash that do not start with $, ~, /, -
    /// or a URL scheme, plus single file names with a repository-file extension.
    /// </summary>
    private static IEnumerable<string> PathsIn(string text) =>
        Token().Split(text)
            .Select(t => t.Trim().TrimEnd('/', '.', ','))
            .Where(t => t.Length > 0 && !t.Contains("://", StringComparison.Ordinal) && !t.Contains('$', StringComparison.Ordinal) && !t.Contains('*', StringComparison.Ordinal))
            .Where(t => RelativePath().IsMatch(t) || RepositoryFile().IsMatch(t));

    private static YamlMappingNode Load(string workflow)
    {
        using var reader = new StreamReader(Repo.Full(workflow));
        var stream = new YamlStream();
        stream.Load(reader);
        Assert.Single(stream.Documents);
        return Assert.IsType<YamlMappingNode>(stream.Documents[0].RootNode);
    }

    private static IEnumerable<YamlMappingNode> Steps(string workflow) =>
        ((YamlMappingNode)Load(workflow).Children[new YamlScalarNode("jobs")]).Children.Values.SelectMany(Steps);

    private static IEnumerable<YamlMappingNode> Steps(YamlNode job) =>
        job is YamlMappingNode m && m.Children.TryGetValue(new YamlScalarNode("steps"), out var steps) && steps is YamlSequenceNode sequence
            ? sequence.Children.OfType<YamlMappingNode>()
            : [];

    private static IEnumerable<string?> With(YamlMappingNode step) =>
        step.Children.TryGetValue(new YamlScalarNode("with"), out var with) && with is YamlMappingNode inputs
            ? inputs.Children.Values.OfType<YamlScalarNode>().Select(v => v.Value)
            : [];

    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlScalarNode scalar ? scalar.Value : null;

    private static IEnumerable<YamlNode> Descend(YamlNode node) =>
        node switch
        {
            YamlMappingNode m => new[] { node }.Concat(m.Children.Values.SelectMany(Descend)),
            YamlSequenceNode s => new[] { node }.Concat(s.Children.SelectMany(Descend)),
            _ => [node],
        };

    [GeneratedRegex(@"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-/]+)?@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")]
    private static partial Regex PinnedAction();

    [GeneratedRegex(@"^[a-z0-9./_\-]+(:\d+(\.\d+)+[A-Za-z0-9.\-]*|@sha256:[0-9a-f]{64})$")]
    private static partial Regex PinnedImage();

    [GeneratedRegex(@"[\s""'=;()<>|&`]+")]
    private static partial Regex Token();

    [GeneratedRegex(@"^\.?[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_.\-]+)+$")]
    private static partial Regex RelativePath();

    [GeneratedRegex(@"^[A-Za-z0-9_.\-]+\.(json|props|targets|sln|slnx|csproj|bicep|bicepparam|sh|ps1|yml|yaml|md)$")]
    private static partial Regex RepositoryFile();
}
