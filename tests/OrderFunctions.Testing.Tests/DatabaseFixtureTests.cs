using Npgsql;
using OrderFunctions.Testing;

namespace OrderFunctions.Testing.Tests;

public sealed class DatabaseFixtureTests(DatabaseFixture fixture) : IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task Clone_has_the_migrated_schema_when_created_from_the_template()
    {
        var applied = await fixture.AdminScalarAsync<long>("SELECT count(*) FROM evolve.changelog WHERE success");
        var tradingSchema = await fixture.AdminScalarAsync<bool>("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'trading')");

        Assert.True(applied > 0, "evolve.changelog has no applied migration");
        Assert.True(tradingSchema);
    }

    [Fact]
    public async Task Two_fixtures_get_different_databases_when_both_are_initialized()
    {
        var other = new DatabaseFixture();
        await other.InitializeAsync();
        try
        {
            await other.AdminExecuteAsync("CREATE TABLE public.only_in_other (id int)");

            Assert.NotEqual(fixture.DatabaseName, other.DatabaseName);
            Assert.Equal(other.DatabaseName, await other.AdminScalarAsync<string>("SELECT current_database()"));
            Assert.Null(await fixture.AdminScalarAsync<string>("SELECT to_regclass('public.only_in_other')::text"));
        }
        finally
        {
            await other.DisposeAsync();
        }
    }

    [Fact]
    public async Task Disposed_fixture_drops_its_database()
    {
        var other = new DatabaseFixture();
        await other.InitializeAsync();
        var name = other.DatabaseName;

        await other.DisposeAsync();

        Assert.False(await fixture.AdminScalarAsync<bool>("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name));
    }

    [Fact]
    public async Task App_login_can_connect_and_set_role_orders_api()
    {
        await using var connection = await fixture.OpenAppConnectionAsync();
        await using var command = new NpgsqlCommand("SET ROLE orders_api; SELECT current_user::text, session_user::text", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());

        Assert.Equal("orders_api", reader.GetString(0));
        Assert.Equal(PostgresServer.AppLogin, reader.GetString(1));
    }

    [Fact]
    public async Task App_login_has_no_privileges_of_its_roles_until_it_sets_one()
    {
        await using var connection = await fixture.OpenAppConnectionAsync();
        await using var command = new NpgsqlCommand(
            "SELECT pg_has_role(current_user, 'orders_api', 'MEMBER'), pg_has_role(current_user, 'orders_api', 'USAGE'), pg_has_role(current_user, 'orders_maintenance', 'USAGE')",
            connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());

        Assert.True(reader.GetBoolean(0), "orders_app is not a member of orders_api");
        Assert.False(reader.GetBoolean(1), "orders_app inherits orders_api's privileges");
        Assert.False(reader.GetBoolean(2), "orders_app inherits orders_maintenance's privileges");
    }

    [Fact]
    public async Task Admin_scalar_binds_positional_parameters()
    {
        var sum = await fixture.AdminScalarAsync<int>("SELECT $1::int + $2::int", 2, 3);

        Assert.Equal(5, sum);
    }
}
