using System.Reflection;
using System.Text.RegularExpressions;
using OrderFunctions.Testing;

namespace OrderFunctions.Infra.Tests;

/// <summary>Runs the Bicep CLI that the Azure.Bicep.CommandLine.linux-x64 package ships (path set by the csproj).</summary>
internal static partial class BicepCli
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    // A parameter file may read values the deploy workflow provides; a missing one without a
    // default is an error, so the tests provide a stand-in for each. A GUID fits every such parameter.
    private const string EnvironmentPlaceholder = "00000000-0000-0000-0000-000000000000";

    private static readonly Lazy<string> LazyPath = new(Locate);

    public static string Path => LazyPath.Value;

    /// <summary>Runs bicep with the arguments; stdout and stderr are returned together with the exit code.</summary>
    public static async Task<BicepResult> RunAsync(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var run = await Commands.ExecuteAsync(Path, arguments, Timeout, Repo.Root,
            environment?.ToDictionary(e => e.Key, e => (string?)e.Value, StringComparer.Ordinal));
        return new BicepResult(run.ExitCode, run.StandardOutput, run.StandardError);
    }

    /// <summary>
    /// Stand-in values for the environment variables a .bicepparam file reads without a default
    /// (readEnvironmentVariable('NAME')), so the file builds here as it does in the deploy workflow.
    /// </summary>
    public static IReadOnlyDictionary<string, string> EnvironmentFor(string parameterFile) =>
        RequiredVariable().Matches(File.ReadAllText(parameterFile))
            .Select(m => m.Groups["name"].Value)
            .Distinct(StringComparer.Ordinal)
            .Where(name => Environment.GetEnvironmentVariable(name) is null)
            .ToDictionary(name => name, _ => EnvironmentPlaceholder, StringComparer.Ordinal);

    [GeneratedRegex(@"readEnvironmentVariable\(\s*'(?<name>[^']+)'\s*\)")]
    private static partial Regex RequiredVariable();

    private static string Locate()
    {
        var path = typeof(BicepCli).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .SingleOrDefault(a => a.Key == "BicepPath")?.Value;
        if (string.IsNullOrEmpty(path) || !File.Exists(path))
        {
            throw new InvalidOperationException($"The Bicep CLI from Azure.Bicep.CommandLine.linux-x64 is not at '{path}'; restore the test project.");
        }

        // NuGet does not promise to keep the executable bit of files it extracts.
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(path);
            const UnixFileMode execute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
            if ((mode & UnixFileMode.UserExecute) == 0)
            {
                File.SetUnixFileMode(path, mode | execute);
            }
        }

        return path;
    }
}

internal sealed record BicepResult(int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>Everything bicep printed; for build with --outfile/--outdir and for lint, any of it is a diagnostic.</summary>
    public string Diagnostics => string.Join('\n', new[] { StandardOutput, StandardError }.Where(s => s.Length > 0));
}
