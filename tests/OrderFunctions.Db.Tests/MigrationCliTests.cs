using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>The deploy step as a deployer runs it: the built OrderFunctions.Db.dll in its own process.</summary>
public sealed class MigrationCliTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    [Theory]
    [InlineData("this is not a connection string")]
    [InlineData("Host=127.0.0.1;Port=not-a-port")]
    [InlineData("Host=127.0.0.1;Colour=blue")]
    [InlineData("Database=orders")]
    public async Task Cli_rejects_a_malformed_connection_string_with_one_line_and_exit_code_1(string connectionString)
    {
        var run = await RunAsync("validate", "--connection", connectionString);

        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith("error: invalid connection string", run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', run.StandardError);
    }

    [Fact]
    public async Task Cli_reports_an_unreachable_server_with_one_line_and_exit_code_1()
    {
        var run = await RunAsync("migrate", "--connection", $"Host=127.0.0.1;Port={Commands.FreeLoopbackPort()};Database=orders;Username=nobody;Timeout=5");

        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith("error: cannot connect", run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', run.StandardError);
    }

    [Fact]
    public async Task Cli_without_a_command_prints_usage_and_exits_with_2()
    {
        var run = await RunAsync();

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("usage: OrderFunctions.Db", run.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_migrates_an_empty_database_and_then_validates_it()
    {
        var server = await PostgresServer.GetAsync();
        var database = await server.CreateDatabaseAsync(migrated: false);
        try
        {
            var connectionString = server.ConnectionString(database);
            // Not beside the template's migration (or another test's): see LockMigrationsAsync.
            await using var migrationLock = await server.LockMigrationsAsync();

            var migrate = await RunAsync("migrate", "--connection", connectionString);
            var validate = await RunAsync("validate", "--connection", connectionString);

            Assert.True(migrate.ExitCode == 0, migrate.StandardError);
            Assert.Contains($"migrate: {Migrator.Scripts.Count} script(s) applied; schema at version {MigrationTests.HeadVersion()}", migrate.StandardOutput, StringComparison.Ordinal);
            Assert.True(validate.ExitCode == 0, validate.StandardError);
            Assert.Contains("validate: ok", validate.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            await server.DropDatabaseAsync(database);
        }
    }

    private static Task<CommandRun> RunAsync(params string[] arguments)
    {
        var runner = Path.Combine(AppContext.BaseDirectory, "OrderFunctions.Db.dll");
        Assert.True(File.Exists(runner), $"{runner} was not built next to the tests");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

        // Only --connection may decide where the runner goes.
        return Commands.ExecuteAsync(dotnet, [runner, .. arguments], Deadline,
            environment: new Dictionary<string, string?> { ["ORDERS_MIGRATION_CONNECTION"] = null });
    }
}
