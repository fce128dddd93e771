using System.Data;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Azure.Core;
using Azure.Identity;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrderFunctions.Core.Configuration;

namespace OrderFunctions.Core.Data;

/// <summary>Which database role a unit of work acts as (SET LOCAL ROLE; the login itself has no privileges).</summary>
public enum DbRole
{
    /// <summary>A trader's own work: row-level security limits it to app.user_id.</summary>
    Api,

    /// <summary>Timers and admin routes: reads every tenant, writes through SECURITY DEFINER functions.</summary>
    Maintenance,
}

/// <summary>What a call writes: this decides whether it may be repeated, and what a lost answer means.</summary>
public enum Writes
{
    /// <summary>A read: repeated after any connection failure; when no attempt answers, the database is unavailable.</summary>
    Nothing,

    /// <summary>
    /// A write whose repeat cannot apply twice: it is answered from the stored result of its Idempotency-Key, or it
    /// sets the same state again. Repeated after a lost connection, long enough to ride out a server restart; when no
    /// attempt answers, its outcome is unknown and the client repeats it (same key) to learn it.
    /// </summary>
    Idempotently,

    /// <summary>A write that would apply twice: never repeated once sent; a lost answer leaves its outcome unknown.</summary>
    NotIdempotently,
}

/// <summary>
/// The unit of work over one process-wide <see cref="NpgsqlDataSource"/>. Each call sends its context (role, acting
/// user) and its statement in ONE round trip; PostgreSQL runs the batch as one implicit transaction and commits it at
/// the end, so there is no separate BEGIN/COMMIT exchange.
/// <para>
/// What a failure means decides what happens next. Only an error the server reports (a constraint, a statement
/// timeout, a cancellation it confirms) proves the transaction rolled back. A connection that fails after the batch
/// was sent, or a command timeout the server never confirmed, leaves a write's outcome unknown: such a write is
/// repeated only when <see cref="Writes.Idempotently"/>, and otherwise ends in <see cref="OutcomeUnknownException"/>.
/// Deadlocks, serialization failures and connections that cannot be opened are retried for every call.
/// </para>
/// </summary>
public sealed partial class OrdersDatabase : IAsyncDisposable
{
    /// <summary>The data source's name: Npgsql tags its pool metrics with it (see <see cref="PoolMetrics"/>).</summary>
    public const string PoolName = "orderfunctions";

    private const string ContextSql = "SELECT set_config('role', @__role, true), set_config('app.user_id', @__user, true);\n";
    private static readonly string[] EntraScopes = ["https://ossrdbms-aad.database.windows.net/.default"];

    private readonly DatabaseSettings _settings;
    private readonly ILogger<OrdersDatabase> _logger;

    static OrdersDatabase()
    {
        DefaultTypeMap.MatchNamesWithUnderscores = true;
    }

    public OrdersDatabase(NpgsqlDataSource dataSource, DatabaseSettings settings, ILogger<OrdersDatabase> logger)
    {
        DataSource = dataSource;
        _settings = settings;
        _logger = logger;
    }

    public NpgsqlDataSource DataSource { get; }

    public static NpgsqlDataSource CreateDataSource(DatabaseSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (string.IsNullOrWhiteSpace(settings.ConnectionString))
        {
            throw new InvalidOperationException("Database__ConnectionString must be set.");
        }

        var builder = new NpgsqlDataSourceBuilder(settings.ConnectionString) { Name = PoolName };
        builder.ConnectionStringBuilder.ApplicationName ??= "OrderFunctions";
        builder.ConnectionStringBuilder.CommandTimeout = settings.CommandTimeoutSeconds;
        // Npgsql otherwise sends DISCARD ALL before reusing a pooled connection, which also throws away the
        // session's cached plans: every stored function would be re-planned on every call (about twice the
        // database CPU per order, measured). Nothing here leaves session state behind: role and user are set
        // with set_config(..., true) and end with the transaction, as PgBouncer's transaction pooling needs.
        builder.ConnectionStringBuilder.NoResetOnClose = true;
        if (settings.UseEntraAuthentication)
        {
            // Managed identity (AZURE_CLIENT_ID picks the user-assigned one): tokens last about an hour.
            var credential = new DefaultAzureCredential();
            builder.UsePeriodicPasswordProvider(
                async (_, ct) => (await credential.GetTokenAsync(new TokenRequestContext(EntraScopes), ct)).Token,
                TimeSpan.FromMinutes(30), TimeSpan.FromSeconds(5));
        }

        return builder.Build();
    }

    /// <summary>Runs one statement in one round trip and hands its result grid to <paramref name="read"/>.</summary>
    public async Task<T> QueryAsync<T>(DbRole role, Guid? userId, string sql, object? args, Writes writes,
        Func<SqlMapper.GridReader, Task<T>> read, CancellationToken cancellationToken)
    {
        var parameters = new DynamicParameters(args);
        parameters.Add("__role", RoleName(role));
        parameters.Add("__user", userId?.ToString() ?? "");
        var command = new CommandDefinition(ContextSql + sql, parameters, commandTimeout: _settings.CommandTimeoutSeconds,
            cancellationToken: cancellationToken);

        // Whether some attempt of this call may have reached the server and committed: once true for a write, the
        // call can end only in its result or in OutcomeUnknownException, never in "nothing was changed".
        var maybeApplied = false;
        for (var attempt = 0; ; attempt++)
        {
            Exception failure;
            try
            {
                await using var connection = await OpenAsync(cancellationToken);
                try
                {
                    await using var grid = await connection.QueryMultipleAsync(command);
                    await grid.ReadAsync();
                    try
                    {
                        return await read(grid);
                    }
                    catch (Exception e) when (writes != Writes.Nothing && e is not (NpgsqlException or IOException or OperationCanceledException))
                    {
                        // The server answered and commits at the end of the batch whatever this code makes of the answer.
                        throw new OutcomeUnknownException(writes == Writes.Idempotently, e);
                    }
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested && IsConfirmedTimeout(e, connection))
                {
                    // Npgsql asked the server to cancel and the server confirmed it: the transaction rolled back.
                    throw new DatabaseTimeoutException(e);
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested && IsLostAfterSend(e, connection))
                {
                    throw new ConnectionLostException(e, IsTimeout(e));
                }
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected)
            {
                // The server rolled the transaction back: repeating it is always safe.
                failure = e;
            }
            catch (DatabaseUnavailableException e)
            {
                // The connection could not be opened: nothing of this attempt reached the server.
                failure = e;
            }
            catch (ConnectionLostException e) when (writes == Writes.Nothing && e.TimedOut)
            {
                // A read that ran out of time would only run out of time again.
                throw new DatabaseTimeoutException(e.InnerException!);
            }
            catch (ConnectionLostException e)
            {
                maybeApplied |= writes != Writes.Nothing;
                if (writes == Writes.NotIdempotently || e.TimedOut)
                {
                    // Not repeated: a write that may have committed would apply twice, and one still running on the
                    // server (it did not answer in time) would meet its own repeat on the same locks.
                    throw new OutcomeUnknownException(writes == Writes.Idempotently, e.InnerException!);
                }

                failure = e;
            }

            if (attempt >= _settings.MaxRetries)
            {
                throw maybeApplied
                    ? new OutcomeUnknownException(writes == Writes.Idempotently, failure.InnerException ?? failure)
                    : new DatabaseUnavailableException(failure.InnerException ?? failure);
            }

            var delay = RetryDelay(attempt);
            LogRetry(failure is PostgresException pg ? pg.SqlState : (failure.InnerException ?? failure).GetType().Name, attempt + 1, delay.TotalMilliseconds);
            await Task.Delay(delay, cancellationToken);
        }
    }

    /// <summary>Calls a stored function that returns the jsonb envelope, in one round trip.</summary>
    public Task<JsonObject> CallAsync(DbRole role, Guid? userId, string sql, object? args, Writes writes, CancellationToken cancellationToken) =>
        QueryAsync(role, userId, sql, args, writes, async grid =>
        {
            var text = await grid.ReadSingleAsync<string>();
            return JsonNode.Parse(text)?.AsObject() ?? throw new InvalidOperationException("the function returned no envelope");
        }, cancellationToken);

    public ValueTask DisposeAsync() => DataSource.DisposeAsync();

    public static string RoleName(DbRole role) => role switch
    {
        DbRole.Api => "orders_api",
        DbRole.Maintenance => "orders_maintenance",
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    /// <summary>
    /// The wait before retry <paramref name="attempt"/> + 1: 25 ms doubling up to 1 s, half of it random ("equal
    /// jitter") so competing retries spread apart while the total never shrinks. The default 8 retries wait 1.8 to
    /// 3.6 s in all: longer than PostgreSQL needs to restart after a crash (about 0.5 s), so no client sees it.
    /// </summary>
    public static TimeSpan RetryDelay(int attempt)
    {
        var ceiling = Math.Min(1000, 25 << Math.Min(attempt, 6));
        return TimeSpan.FromMilliseconds(ceiling / 2 + Random.Shared.Next(0, ceiling / 2 + 1));
    }

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await DataSource.OpenConnectionAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException or IOException && !cancellationToken.IsCancellationRequested)
        {
            // Nothing was sent: always safe to try again. (57P03 "the database system is starting up" lands here.)
            throw new DatabaseUnavailableException(e);
        }
    }

    /// <summary>A command timeout the server answered with 57014: Npgsql then keeps the connection, the statement rolled back.</summary>
    private static bool IsConfirmedTimeout(Exception e, NpgsqlConnection connection) =>
        IsTimeout(e) && !connection.FullState.HasFlag(ConnectionState.Broken)
        || e is PostgresException { SqlState: PostgresErrorCodes.QueryCanceled };

    private static bool IsTimeout(Exception e) => e is TimeoutException or NpgsqlException { InnerException: TimeoutException };

    /// <summary>The batch may have reached the server, but no complete answer came back.</summary>
    private static bool IsLostAfterSend(Exception e, NpgsqlConnection connection) => e switch
    {
        // A command timeout the server never confirmed: Npgsql breaks the connection.
        _ when IsTimeout(e) => true,
        // When the backend dies mid-read, Dapper's reader cleanup meets the closed reader and this replaces the
        // real error; the broken connection says what happened.
        InvalidOperationException => connection.FullState.HasFlag(ConnectionState.Broken),
        // admin_shutdown, crash_shutdown, cannot_connect_now and connection exceptions: the backend went away mid-call.
        PostgresException pg => pg.SqlState is "57P01" or "57P02" or "57P03" || pg.SqlState.StartsWith("08", StringComparison.Ordinal),
        NpgsqlException or IOException or SocketException or EndOfStreamException => true,
        _ => false,
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Database call retried (attempt {Attempt}) after {Reason}, in {DelayMs} ms")]
    private partial void LogRetry(string reason, int attempt, double delayMs);

    private sealed class ConnectionLostException(Exception inner, bool timedOut) : Exception("the database connection was lost", inner)
    {
        public bool TimedOut { get; } = timedOut;
    }
}

/// <summary>The database could not be reached (after retries), or kept rolling the call back: nothing was changed.</summary>
public sealed class DatabaseUnavailableException(Exception inner) : Exception("the database is unavailable", inner);

/// <summary>The server stopped a statement that ran past its time (and confirmed it): nothing was changed.</summary>
public sealed class DatabaseTimeoutException(Exception inner) : Exception("the database did not answer in time", inner);

/// <summary>
/// A write was sent but no answer came back (the connection was lost, or the server did not answer in time): it may or
/// may not have committed. <see cref="RepeatIsSafe"/> says whether repeating the identical request is harmless.
/// </summary>
public sealed class OutcomeUnknownException(bool repeatIsSafe, Exception inner)
    : Exception("the database connection was lost or timed out after the change was sent", inner)
{
    public bool RepeatIsSafe { get; } = repeatIsSafe;
}
