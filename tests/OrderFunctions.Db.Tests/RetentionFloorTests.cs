using Dapper;
using Npgsql;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// The retention floor is the database's own: no role the application can take deletes an audit row younger than
/// the floor (trading.retention_floors, owner-only: 7 years for balance_audit_log, 90 days for error_log), whatever
/// cutoff it passes. Reproduces the exploit that once deleted audit rows written a minute earlier: delete_archived_audit_rows
/// called with a cutoff of now() and a blob that was never written, with count and sha256 computed from the database.
/// </summary>
public sealed class RetentionFloorTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    // The exploit as orders_maintenance can run it: its own run record, the rows' count and hash read through
    // audit_rows_to_archive, then delete_archived_audit_rows with a cutoff of now().
    private const string ExploitSql = """
        WITH run AS (
            INSERT INTO trading.maintenance_runs (job, trigger, status) VALUES ('audit-retention', 'exploit', 'running') RETURNING id),
        batch AS (
            SELECT min(r.id) AS first_id, max(r.id) AS last_id, count(*)::int AS row_count,
                   encode(sha256(convert_to(string_agg(r.line || E'\n', '' ORDER BY r.id), 'UTF8')), 'hex') AS sha256
            FROM trading.audit_rows_to_archive(@Table, 0, now(), 2147483647) r)
        SELECT trading.delete_archived_audit_rows(run.id, @Table, batch.first_id, batch.last_id, now(), batch.row_count, batch.sha256,
                                                  'no-such-blob/never-written.ndjson.gz')::text
        FROM run, batch
        """;

    [Theory]
    [InlineData("balance_audit_log")]
    [InlineData("error_log")]
    public async Task Deleting_archived_rows_with_a_cutoff_of_now_and_a_blob_never_written_deletes_nothing_as_orders_maintenance(string table)
    {
        // Arrange: young rows in both tables (a deposit and an order's audit rows; a rejected order's error_log row)
        await ArrangeYoungRowsAsync();
        var before = await CountAsync(table);

        // Act
        var answer = await _trading.CallAsync(Trading.Maintenance, null, ExploitSql, new { Table = table });

        // Assert: refused by name, nothing deleted, no archive recorded
        Assert.False(answer.Success, answer.Json);
        Assert.Equal("VALIDATION_ERROR", answer.ErrorCode);
        Assert.Contains("cutoff", answer.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(before, await CountAsync(table));
        Assert.Equal(0L, await database.AdminScalarAsync<long>("SELECT count(*) FROM trading.audit_archives"));
    }

    [Fact]
    public async Task The_app_login_cannot_run_the_exploit_without_a_role_nor_with_the_maintenance_role()
    {
        await ArrangeYoungRowsAsync();
        var before = await CountAsync("balance_audit_log");

        await using var connection = await database.OpenAppConnectionAsync();
        var asLogin = await Assert.ThrowsAsync<PostgresException>(() => connection.QueryAsync<string>(ExploitSql, new { Table = "balance_audit_log" }));
        await using var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync("SET LOCAL ROLE orders_maintenance", transaction: transaction);
        var asMaintenance = await connection.QuerySingleAsync<string>(ExploitSql, new { Table = "balance_audit_log" }, transaction);
        await transaction.CommitAsync();

        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, asLogin.SqlState);
        Assert.Equal("VALIDATION_ERROR", Envelope.Parse(asMaintenance).ErrorCode);
        Assert.Equal(before, await CountAsync("balance_audit_log"));
    }

    [Theory]
    [InlineData("balance_audit_log")]
    [InlineData("error_log")]
    public async Task A_young_row_is_not_deleted_even_by_the_archiver_with_an_archive_record_covering_it(string table)
    {
        // The retention path's own role, past delete_archived_audit_rows: it writes an archive record of now() itself, which
        // satisfies the archived-only delete gate. The floor's trigger still refuses.
        await ArrangeYoungRowsAsync();
        var before = await CountAsync(table);
        await using var connection = await database.OpenAdminConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var run = await connection.QuerySingleAsync<long>(
            "INSERT INTO trading.maintenance_runs (job, trigger, status) VALUES ('audit-retention', 'exploit', 'running') RETURNING id", transaction: transaction);
        await connection.ExecuteAsync("SET LOCAL ROLE orders_archiver", transaction: transaction);
        await connection.ExecuteAsync(Sql(table, """
            INSERT INTO trading.audit_archives (table_name, blob_name, first_id, last_id, row_count, sha256, cutoff, maintenance_run_id)
            SELECT '{0}', 'forged', min(id), max(id), count(*), repeat('0', 64), now() + interval '1 day', @run FROM trading.{0}
            """), new { run }, transaction);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => connection.ExecuteAsync(Sql(table, "DELETE FROM trading.{0}"), transaction: transaction));

        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
        Assert.Contains("retention floor", refused.MessageText, StringComparison.Ordinal);
        await transaction.RollbackAsync();
        Assert.Equal(before, await CountAsync(table));
    }

    [Fact]
    public async Task Rows_older_than_the_floor_may_still_be_deleted_by_the_retention_path()
    {
        // The floor gates age, not the archive: the archived-only gate of R__02 still applies on top (tested in AuditTests).
        await ArrangeYoungRowsAsync();
        var oldest = await database.AdminScalarAsync<long>("SELECT min(id) FROM trading.error_log");
        await using var connection = await database.OpenAdminConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync("SET LOCAL session_replication_role = replica", transaction: transaction);
        await connection.ExecuteAsync("UPDATE trading.error_log SET created_at = now() - interval '91 days' WHERE id = @oldest", new { oldest }, transaction);
        await connection.ExecuteAsync("SET LOCAL session_replication_role = origin", transaction: transaction);
        var run = await connection.QuerySingleAsync<long>(
            "INSERT INTO trading.maintenance_runs (job, trigger, status) VALUES ('audit-retention', 'test', 'running') RETURNING id", transaction: transaction);
        await connection.ExecuteAsync("SET LOCAL ROLE orders_archiver", transaction: transaction);
        await connection.ExecuteAsync("""
            INSERT INTO trading.audit_archives (table_name, blob_name, first_id, last_id, row_count, sha256, cutoff, maintenance_run_id)
            VALUES ('error_log', 'old-enough', @oldest, @oldest, 1, repeat('0', 64), now() - interval '90 days', @run)
            """, new { oldest, run }, transaction);

        var deleted = await connection.ExecuteAsync("DELETE FROM trading.error_log WHERE id = @oldest", new { oldest }, transaction);

        Assert.Equal(1, deleted);
        await transaction.RollbackAsync();
    }

    [Fact]
    public async Task An_archive_whose_rows_differ_from_the_database_deletes_nothing_and_records_no_archive()
    {
        // Arrange: error_log rows past the floor, and a manifest whose hash is not theirs
        await ArrangeYoungRowsAsync();
        await using (var connection = await database.OpenAdminConnectionAsync())
        await using (var aging = await connection.BeginTransactionAsync())
        {
            await connection.ExecuteAsync("SET LOCAL session_replication_role = replica", transaction: aging);
            await connection.ExecuteAsync("UPDATE trading.error_log SET created_at = now() - interval '91 days'", transaction: aging);
            await aging.CommitAsync();
        }

        var before = await CountAsync("error_log");
        const string forged = """
            WITH run AS (
                INSERT INTO trading.maintenance_runs (job, trigger, status) VALUES ('audit-retention', 'test', 'running') RETURNING id),
            batch AS (
                SELECT min(r.id) AS first_id, max(r.id) AS last_id, count(*)::int AS row_count
                FROM trading.audit_rows_to_archive('error_log', 0, now() - interval '90 days', 2147483647) r)
            SELECT trading.delete_archived_audit_rows(run.id, 'error_log', batch.first_id, batch.last_id, now() - interval '90 days',
                                                      batch.row_count, repeat('0', 64), 'error_log/forged.ndjson.gz')::text
            FROM run, batch
            """;

        // Act
        var refused = await Assert.ThrowsAsync<PostgresException>(() => _trading.CallAsync(Trading.Maintenance, null, forged));

        // Assert: an integrity failure of the job, not an answer; nothing deleted, no archive recorded
        Assert.Equal(PostgresErrorCodes.DataException, refused.SqlState);
        Assert.Contains("nothing was deleted", refused.MessageText, StringComparison.Ordinal);
        Assert.Equal(before, await CountAsync("error_log"));
        Assert.Equal(0L, await database.AdminScalarAsync<long>("SELECT count(*) FROM trading.audit_archives"));
    }

    [Theory]
    [InlineData("orders_api")]
    [InlineData("orders_maintenance")]
    [InlineData("orders_archiver")]
    public async Task Only_the_owner_reads_or_changes_the_floors_and_every_role_may_learn_them(string role)
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync($"SET LOCAL ROLE {role}", transaction: transaction);

        var change = await Assert.ThrowsAsync<PostgresException>(() =>
            connection.ExecuteAsync("UPDATE trading.retention_floors SET min_age = interval '1 day'", transaction: transaction));

        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, change.SqlState);
        await transaction.RollbackAsync();
        Assert.Equal(["balance_audit_log 7 years", "error_log 90 days"],
            (await connection.QueryAsync<string>("SELECT table_name || ' ' || min_age::text FROM trading.retention_floors ORDER BY 1")).ToList());
        if (role != "orders_api")
        {
            await using var asRole = await connection.BeginTransactionAsync();
            await connection.ExecuteAsync($"SET LOCAL ROLE {role}", transaction: asRole);
            Assert.Equal("7 years", await connection.QuerySingleAsync<string>("SELECT trading.retention_floor('balance_audit_log')::text", transaction: asRole));
        }
    }

    [Fact]
    public async Task A_floor_must_be_at_least_a_day_and_belong_to_an_audit_table()
    {
        var tooShort = await Assert.ThrowsAsync<PostgresException>(() =>
            database.AdminExecuteAsync("UPDATE trading.retention_floors SET min_age = interval '1 hour' WHERE table_name = 'error_log'"));
        var otherTable = await Assert.ThrowsAsync<PostgresException>(() =>
            database.AdminExecuteAsync("INSERT INTO trading.retention_floors (table_name, min_age) VALUES ('execution_logs', interval '1 year')"));

        Assert.Equal(PostgresErrorCodes.CheckViolation, tooShort.SqlState);
        Assert.Equal(PostgresErrorCodes.CheckViolation, otherTable.SqlState);
    }

    private async Task ArrangeYoungRowsAsync()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var trader = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(trader, instrument.Symbol, "buy", 1m);
        // Far beyond the balance: a stored rejection, which writes an error_log row.
        await _trading.ExecuteOrderAsync(trader, instrument.Symbol, "buy", 1_000_000m);
        Assert.True(await CountAsync("error_log") > 0, "the arrangement wrote no error_log row");
    }

    private Task<long> CountAsync(string table) => database.AdminScalarAsync<long>(Sql(table, "SELECT count(*) FROM trading.{0}"));

    /// <summary>Only the two retention tables' names are ever put into SQL text.</summary>
    private static string Sql(string table, string template) => table is "balance_audit_log" or "error_log"
        ? string.Format(System.Globalization.CultureInfo.InvariantCulture, template, table)
        : throw new ArgumentOutOfRangeException(nameof(table));
}
