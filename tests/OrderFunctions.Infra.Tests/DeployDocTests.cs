using System.Text.RegularExpressions;

namespace OrderFunctions.Infra.Tests;

/// <summary>docs/deploy.md and the templates describe the same parameters.</summary>
public sealed partial class DeployDocTests
{
    /// <summary>camelCase names the doc may put in backticks although they belong to something other than infra/.</summary>
    private static readonly Dictionary<string, string> NamesOutsideInfra = new(StringComparer.Ordinal)
    {
        ["requestedAccessTokenVersion"] = "a property of the API app registration's manifest in Microsoft Entra",
        ["preAuthorizedApplications"] = "a property of the API app registration (its api section) in Microsoft Entra",
    };

    [Fact]
    public async Task Parameters_the_doc_lists_exist_in_main_bicep()
    {
        var template = await CompiledTemplate.GetAsync();

        var unknown = DocumentedParameters().Except(template.ParameterNames).ToList();

        Assert.True(unknown.Count == 0, $"docs/deploy.md documents parameters main.bicep does not have: {string.Join(", ", unknown)}");
    }

    [Fact]
    public async Task Every_parameter_of_main_bicep_is_set_in_the_parameter_file_or_documented()
    {
        var template = await CompiledTemplate.GetAsync();

        var missing = template.ParameterNames.Except(template.ParameterFileNames).Except(DocumentedParameters()).Order(StringComparer.Ordinal).ToList();

        Assert.True(missing.Count == 0, $"set in neither infra/main.bicepparam nor the Parameters table of docs/deploy.md: {string.Join(", ", missing)}");
    }

    [Fact]
    public async Task Parameters_set_in_the_doc_code_blocks_exist_in_main_bicep()
    {
        var template = await CompiledTemplate.GetAsync();

        var unknown = FencedBlocks().SelectMany(b => ParamLine().Matches(b)).Select(m => m.Groups["name"].Value).Except(template.ParameterNames).ToList();

        Assert.True(unknown.Count == 0, $"docs/deploy.md sets parameters main.bicep does not have: {string.Join(", ", unknown)}");
    }

    /// <summary>
    /// A camelCase name in backticks is a parameter, an output or some other name of the templates
    /// (a resource property, a Bicep function). One that appears nowhere in infra/ is a renamed or
    /// removed parameter the doc still tells people to set, unless it is listed as belonging elsewhere.
    /// </summary>
    [Fact]
    public void Every_camel_case_name_in_backticks_names_something_in_infra()
    {
        var infraText = string.Join('\n', Repo.Files(Repo.Infra, "*.bicep*").Select(f => File.ReadAllText(Repo.Full(f))));
        var infraWords = Word().Matches(infraText).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);

        var unknown = InlineCode()
            .SelectMany(span => CamelCase().Matches(span).Select(m => m.Value))
            .Distinct(StringComparer.Ordinal)
            .Where(name => !infraWords.Contains(name) && !NamesOutsideInfra.ContainsKey(name))
            .ToList();

        Assert.True(unknown.Count == 0, $"docs/deploy.md names what infra/ does not have: {string.Join(", ", unknown)}");
    }

    [Fact]
    public void Doc_has_a_parameters_table()
    {
        Assert.NotEmpty(DocumentedParameters());
    }

    /// <summary>The first cell of each row of the table under the "## Parameters" heading.</summary>
    private static HashSet<string> DocumentedParameters()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var inSection = false;
        foreach (var line in File.ReadLines(Repo.DeployDoc))
        {
            if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                inSection = line.Trim() == "## Parameters";
            }
            else if (inSection && TableRowName().Match(line) is { Success: true } row)
            {
                names.Add(row.Groups["name"].Value);
            }
        }

        return names;
    }

    /// <summary>Inline code spans outside fenced blocks.</summary>
    private static IEnumerable<string> InlineCode() =>
        InlineSpan().Matches(FencedBlock().Replace(File.ReadAllText(Repo.DeployDoc), "")).Select(m => m.Groups["code"].Value);

    private static IEnumerable<string> FencedBlocks() =>
        FencedBlock().Matches(File.ReadAllText(Repo.DeployDoc)).Select(m => m.Value);

    [GeneratedRegex(@"^\|\s*`(?<name>[A-Za-z][A-Za-z0-9]*)`\s*\|")]
    private static partial Regex TableRowName();

    [GeneratedRegex(@"^```.*?^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex FencedBlock();

    [GeneratedRegex(@"`(?<code>[^`\n]+)`")]
    private static partial Regex InlineSpan();

    [GeneratedRegex(@"^\s*param\s+(?<name>[A-Za-z][A-Za-z0-9]*)\s*=", RegexOptions.Multiline)]
    private static partial Regex ParamLine();

    [GeneratedRegex(@"\b[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+\b")]
    private static partial Regex CamelCase();

    [GeneratedRegex(@"\b[A-Za-z_][A-Za-z0-9_]*\b")]
    private static partial Regex Word();
}
