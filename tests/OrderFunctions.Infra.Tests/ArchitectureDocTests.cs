using System.Text.RegularExpressions;

namespace OrderFunctions.Infra.Tests;

/// <summary>
/// docs/architecture.md is the map a new engineer reads first: every file, folder and type it names in backticks
/// must exist, so a rename or a move that forgets the map fails here instead of misleading the reader.
/// </summary>
public sealed partial class ArchitectureDocTests
{
    private static readonly string Doc = Path.Combine(Repo.Root, "docs", "architecture.md");

    /// <summary>Where a path the doc gives relative to a project (e.g. <c>Http/ErrorCodes.cs</c>) is looked for.</summary>
    private static readonly string[] PathBases = ["", "functions/OrderFunctions.Core", "functions"];

    [Fact]
    public void Every_path_the_doc_names_exists()
    {
        var missing = Named().Where(LooksLikePath)
            // A pattern (db/migrations/V<version>__*.sql) names its folder.
            .Select(p => p.IndexOfAny(['*', '<']) is var at and >= 0 ? p[..p.LastIndexOf('/', at)] : p.TrimEnd('/'))
            .Where(p => !PathBases.Any(b => File.Exists(Repo.Full(Path.Combine(b, p))) || Directory.Exists(Repo.Full(Path.Combine(b, p)))))
            .ToList();

        Assert.True(missing.Count == 0, $"docs/architecture.md names paths the repository does not have: {string.Join(", ", missing)}");
        Assert.Contains(Named(), p => p == "db/migrations/R__03_execute_order.sql");
    }

    [Fact]
    public void Every_type_and_member_the_doc_names_exists_in_the_code()
    {
        var sources = Repo.Files(Repo.Full("functions"), "*.cs").Concat(Repo.Files(Repo.Full("tests"), "*.cs"))
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
            .Select(f => File.ReadAllText(Repo.Full(f)))
            .ToList();

        var missing = new List<string>();
        foreach (var name in Named().Where(n => TypeOrMember().IsMatch(n)))
        {
            var parts = name.Split('.');
            var declaring = sources.Where(s => Regex.IsMatch(s, $@"\b(class|record|enum|interface|struct)\s+{parts[0]}\b")).ToList();
            if (declaring.Count == 0 || (parts.Length == 2 && !declaring.Any(s => Regex.IsMatch(s, $@"\b{parts[1]}\b"))))
            {
                missing.Add(name);
            }
        }

        Assert.True(missing.Count == 0, $"docs/architecture.md names types or members the code does not have: {string.Join(", ", missing)}");
    }

    private static List<string> Named() =>
        [.. Backticked().Matches(File.ReadAllText(Doc)).Select(m => m.Groups["text"].Value)];

    private static bool LooksLikePath(string text) =>
        // Commands and routes (`bash bench/run.sh`, `POST /api/orders`) have spaces; paths here have none.
        !text.Contains(' ') && !text.Contains("://", StringComparison.Ordinal) && !text.StartsWith('/') &&
        (text.Contains('/') || text.EndsWith(".cs", StringComparison.Ordinal) || text.EndsWith(".sql", StringComparison.Ordinal) ||
         text.EndsWith(".json", StringComparison.Ordinal) || text.EndsWith(".bicep", StringComparison.Ordinal)) &&
        !text.Contains('(') && !text.Contains('=') && !text.Contains('|');

    [GeneratedRegex("`(?<text>[^`\n]+)`")]
    private static partial Regex Backticked();

    /// <summary><c>OrderApi</c>, <c>OrdersDatabase.CallAsync</c>: a PascalCase type, optionally with one member.</summary>
    [GeneratedRegex(@"^[A-Z][a-z][A-Za-z]+(\.[A-Z][A-Za-z]+)?$")]
    private static partial Regex TypeOrMember();
}
