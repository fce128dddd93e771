using Npgsql;
using OrderFunctions.Testing;

namespace OrderFunctions.Api.Tests.Support;

/// <summary>
/// Row counts and a content checksum of every table a request could write, read as admin (past row-level
/// security): two equal snapshots mean nothing was written in between.
/// </summary>
public sealed record DatabaseState(IReadOnlyDictionary<string, string> Tables)
{
    private static readonly string[] Audited =
        ["accounts", "positions", "orders", "fills", "balance_audit_log", "execution_logs", "error_log", "strategies", "instruments",
         "deposit_requests", "write_offs", "risk_events"];

    public static async Task<DatabaseState> CaptureAsync(DatabaseFixture database)
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        var tables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var table in Audited)
        {
            // Table names come from the constant list above, never from input.
#pragma warning disable CA2100
            await using var command = new NpgsqlCommand(
                $"SELECT count(*)::text || ' rows, md5 ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM trading.{table} t",
                connection);
#pragma warning restore CA2100
            tables[table] = (string)(await command.ExecuteScalarAsync())!;
        }

        return new DatabaseState(tables);
    }

    public static void AssertUnchanged(DatabaseState before, DatabaseState after)
    {
        foreach (var (table, state) in before.Tables)
        {
            Assert.True(state == after.Tables[table], $"trading.{table} changed: {state} -> {after.Tables[table]}");
        }
    }
}
