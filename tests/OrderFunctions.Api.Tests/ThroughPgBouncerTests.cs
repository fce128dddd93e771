using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Api.Tests;

// The same tests, with the app reaching PostgreSQL through a real PgBouncer in transaction pooling mode, as in
// Azure: orders and their money, the Idempotency-Key contract, who sees whose rows (row-level security rests on the
// transaction-local role and app.user_id), listings, and the admin routes including the maintenance jobs.

/// <summary><see cref="OrderExecutionTests"/> through PgBouncer (transaction pooling).</summary>
public sealed class OrderExecutionThroughPgBouncerTests(PgBouncerApiFixture api) : OrderExecutionTests(api), IClassFixture<PgBouncerApiFixture>;

/// <summary><see cref="IdempotencyTests"/> through PgBouncer (transaction pooling).</summary>
public sealed class IdempotencyThroughPgBouncerTests(PgBouncerApiFixture api) : IdempotencyTests(api), IClassFixture<PgBouncerApiFixture>;

/// <summary><see cref="AuthTests"/> (tokens, and row-level security between traders) through PgBouncer (transaction pooling).</summary>
public sealed class AuthThroughPgBouncerTests(PgBouncerApiFixture api) : AuthTests(api), IClassFixture<PgBouncerApiFixture>;

/// <summary><see cref="ListingTests"/> through PgBouncer (transaction pooling).</summary>
public sealed class ListingThroughPgBouncerTests(PgBouncerApiFixture api) : ListingTests(api), IClassFixture<PgBouncerApiFixture>;

/// <summary><see cref="AdminRoutesTests"/> (instruments, deposits, syncs, maintenance jobs) through PgBouncer (transaction pooling).</summary>
public sealed class AdminRoutesThroughPgBouncerTests(PgBouncerApiFixture api) : AdminRoutesTests(api), IClassFixture<PgBouncerApiFixture>;

/// <summary>The classes above really go through PgBouncer: their host's client connections are PgBouncer's.</summary>
public sealed class PgBouncerRoutingTests(PgBouncerApiFixture api) : IClassFixture<PgBouncerApiFixture>
{
    [Fact]
    public async Task The_host_reaches_its_database_as_a_client_of_pgbouncer()
    {
        var trader = await api.NewTraderAsync(100m);

        (await api.GetAsync("/api/accounts/me", ApiFixture.TokenFor(trader))).AssertSuccess(200);

        var clients = await api.Bouncer.ShowAsync("SHOW CLIENTS");
        Assert.Contains(clients, c => c["database"] == api.DatabaseName && c["user"] == PostgresServer.AppLogin);
        var stats = await api.Bouncer.ShowAsync("SHOW STATS");
        Assert.True(long.Parse(stats.Single(s => s["database"] == api.DatabaseName)["total_xact_count"], System.Globalization.CultureInfo.InvariantCulture) > 0);
    }
}
