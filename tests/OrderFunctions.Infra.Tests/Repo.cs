namespace OrderFunctions.Infra.Tests;

/// <summary>Paths in the repository the tests read, found from the test assembly's folder.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Infra => Path.Combine(Root, "infra");

    public static string MainTemplate => Path.Combine(Infra, "main.bicep");

    public static string MainParameters => Path.Combine(Infra, "main.bicepparam");

    /// <summary>The named test deployment's parameters: production's shape with an unlocked archive policy.</summary>
    public static string TestParameters => Path.Combine(Infra, "test.bicepparam");

    public static string DeployDoc => Path.Combine(Root, "docs", "deploy.md");

    public static string SettingsSample => Path.Combine(Root, "local.settings.sample.json");

    public static string Workflows => Path.Combine(Root, ".github", "workflows");

    /// <summary>The path relative to the root with forward slashes, as test case names and messages show it.</summary>
    public static string Relative(string path) => Path.GetRelativePath(Root, path).Replace('\\', '/');

    public static string Full(string relative) => Path.Combine(Root, relative);

    /// <summary>Files under a folder of the repository, relative and sorted, so test cases are stable.</summary>
    public static IEnumerable<string> Files(string folder, string pattern) =>
        Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, pattern, SearchOption.AllDirectories).Select(Relative).Order(StringComparer.Ordinal)
            : [];

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "global.json")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No global.json above {AppContext.BaseDirectory}: the tests must run inside the repository.");
    }
}
