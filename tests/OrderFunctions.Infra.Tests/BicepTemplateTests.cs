namespace OrderFunctions.Infra.Tests;

/// <summary>
/// Every template and parameter file under infra/ builds and lints offline with no diagnostic at
/// all: a warning today (an unknown API version, an unused parameter, a hard-coded URL) is the
/// deployment failure of tomorrow.
/// </summary>
public sealed class BicepTemplateTests
{
    public static TheoryData<string> Templates => [.. Repo.Files(Repo.Infra, "*.bicep")];

    public static TheoryData<string> ParameterFiles => [.. Repo.Files(Repo.Infra, "*.bicepparam")];

    [Fact]
    public void Infra_folder_has_a_main_template_modules_and_a_parameter_file()
    {
        Assert.True(File.Exists(Repo.MainTemplate), "infra/main.bicep is missing");
        Assert.True(File.Exists(Repo.MainParameters), "infra/main.bicepparam is missing");
        Assert.NotEmpty(Repo.Files(Path.Combine(Repo.Infra, "modules"), "*.bicep"));
    }

    [Theory]
    [MemberData(nameof(Templates))]
    public async Task Template_builds_without_warnings_or_errors(string template)
    {
        var output = Directory.CreateTempSubdirectory("bicep-build-");
        try
        {
            var result = await BicepCli.RunAsync(null, "build", Repo.Full(template), "--outdir", output.FullName);

            Assert.True(result.ExitCode == 0 && result.Diagnostics.Length == 0, $"bicep build {template} exited {result.ExitCode}:\n{result.Diagnostics}");
            Assert.True(File.Exists(Path.Combine(output.FullName, Path.GetFileNameWithoutExtension(template) + ".json")), $"bicep build {template} wrote no ARM template");
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(Templates))]
    public async Task Template_passes_the_linter_with_no_findings(string template)
    {
        var result = await BicepCli.RunAsync(null, "lint", Repo.Full(template));

        Assert.True(result.ExitCode == 0 && result.Diagnostics.Length == 0, $"bicep lint {template} exited {result.ExitCode}:\n{result.Diagnostics}");
    }

    [Theory]
    [MemberData(nameof(ParameterFiles))]
    public async Task Parameter_file_builds_without_warnings_or_errors(string parameterFile)
    {
        var output = Directory.CreateTempSubdirectory("bicep-params-");
        try
        {
            var file = Path.Combine(output.FullName, "parameters.json");
            var result = await BicepCli.RunAsync(BicepCli.EnvironmentFor(Repo.Full(parameterFile)), "build-params", Repo.Full(parameterFile), "--outfile", file);

            Assert.True(result.ExitCode == 0 && result.Diagnostics.Length == 0, $"bicep build-params {parameterFile} exited {result.ExitCode}:\n{result.Diagnostics}");
            Assert.True(File.Exists(file), $"bicep build-params {parameterFile} wrote no parameters file");
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(ParameterFiles))]
    public async Task Parameter_file_passes_the_linter_with_no_findings(string parameterFile)
    {
        var result = await BicepCli.RunAsync(BicepCli.EnvironmentFor(Repo.Full(parameterFile)), "lint", Repo.Full(parameterFile));

        Assert.True(result.ExitCode == 0 && result.Diagnostics.Length == 0, $"bicep lint {parameterFile} exited {result.ExitCode}:\n{result.Diagnostics}");
    }
}
