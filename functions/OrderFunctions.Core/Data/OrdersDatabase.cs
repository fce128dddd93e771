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

/// <summary>Whether repeating a call whose outcome is unknown (connection lost mid-call) is harmless.</summary>
public enum Repeatable
{
    /// <summary>Reads, and writes deduplicated by a key (execute_order): retried after a lost connection.</summary>
    Yes,

    /// <summary>Writes that would apply twice: retried only when the server certainly rolled back.</summary>
    No,
}

/// <summary>
/// The unit of work of DESIGN.md §5 over one process-wide <see cref="NpgsqlDataSource"/>. Each call sends its
/// context (role, acting user) and its statement in ONE round trip; PostgreSQL runs the batch as one implicit
/// transaction and commits it at the end, so there is no separate BEGIN/COMMIT exchange. Deadlocks and
/// serialization failures are retried with jitter; so are lost connections when the call is repeatable.
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
    public async Task<T> QueryAsync<T>(DbRole role, Guid? userId, string sql, object? args, Repeatable repeatable,
        Func<SqlMapper.GridReader, Task<T>> read, CancellationToken cancellationToken)
    {
        var parameters = new DynamicParameters(args);
        parameters.Add("__role", RoleName(role));
        parameters.Add("__user", userId?.ToString() ?? "");
        var command = new CommandDefinition(ContextSql + sql, parameters, commandTimeout: _settings.CommandTimeoutSeconds,
            cancellationToken: cancellationToken);

        return await WithRetriesAsync(async () =>
        {
            await using var connection = await OpenAsync(cancellationToken);
            try
            {
                await using var grid = await connection.QueryMultipleAsync(command);
                await grid.ReadAsync();
                return await read(grid);
            }
            catch (Exception e) when (IsConnectionLoss(e, connection, cancellationToken))
            {
                throw new ConnectionLostException(e);
            }
        }, repeatable, cancellationToken);
    }

    /// <summary>Calls a stored function that returns the jsonb envelope, in one round trip.</summary>
    public Task<JsonObject> CallAsync(DbRole role, Guid? userId, string sql, object? args, Repeatable repeatable, CancellationToken cancellationToken) =>
        QueryAsync(role, userId, sql, args, repeatable, async grid =>
        {
            var text = await grid.ReadSingleAsync<string>();
            return JsonNode.Parse(text)?.AsObject() ?? throw new InvalidOperationException("the function returned no envelope");
        }, cancellationToken);

    /// <summary>
    /// Several statements in one explicit transaction (context first, committed once), for work that cannot
    /// be a single statement. The whole of <paramref name="work"/> is repeated on a retry.
    /// </summary>
    public async Task<T> InTransactionAsync<T>(DbRole role, Guid? userId, Repeatable repeatable,
        Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        return await WithRetriesAsync(async () =>
        {
            await using var connection = await OpenAsync(cancellationToken);
            try
            {
                await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
                await connection.ExecuteAsync(new CommandDefinition(ContextSql,
                    new { __role = RoleName(role), __user = userId?.ToString() ?? "" }, transaction, cancellationToken: cancellationToken));
                var result = await work(connection, transaction);
                await transaction.CommitAsync(cancellationToken);
                return result;
            }
            catch (Exception e) when (IsConnectionLoss(e, connection, cancellationToken))
            {
                throw new ConnectionLostException(e);
            }
        }, repeatable, cancellationToken);
    }

    public ValueTask DisposeAsync() => DataSource.DisposeAsync();

    public static string RoleName(DbRole role) => role switch
    {
        DbRole.Api => "orders_api",
        DbRole.Maintenance => "orders_maintenance",
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await DataSource.OpenConnectionAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            // Nothing was sent: always safe to try again.
            throw new DatabaseUnavailableException(e);
        }
    }

    private async Task<T> WithRetriesAsync<T>(Func<Task<T>> attempt, Repeatable repeatable, CancellationToken cancellationToken)
    {
        for (var tries = 0; ; tries++)
        {
            try
            {
                return await attempt();
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
                                              && tries < _settings.MaxRetries)
            {
                // The server rolled the transaction back: repeating it is always safe.
                LogRetry(e.SqlState, tries + 1);
            }
            catch (DatabaseUnavailableException e) when (tries < _settings.MaxRetries)
            {
                LogRetry(e.InnerException?.GetType().Name ?? "unavailable", tries + 1);
            }
            catch (ConnectionLostException e) when (repeatable == Repeatable.Yes && tries < _settings.MaxRetries)
            {
                LogRetry(e.InnerException?.GetType().Name ?? "connection lost", tries + 1);
            }
            catch (ConnectionLostException e) when (repeatable == Repeatable.No)
            {
                throw new OutcomeUnknownException(e.InnerException!);
            }
            catch (ConnectionLostException e)
            {
                throw new DatabaseUnavailableException(e.InnerException!);
            }
            catch (Exception e) when (IsTimeout(e, cancellationToken))
            {
                throw new DatabaseTimeoutException(e);
            }

            // Full jitter: a random wait up to 25 ms · 2^try spreads competing retries apart.
            var ceiling = 25 * (1 << Math.Min(tries, 6));
            await Task.Delay(Random.Shared.Next(1, ceiling + 1), cancellationToken);
        }
    }

    private static bool IsConnectionLoss(Exception e, NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return false;
        }

        return e switch
        {
            // When the backend dies mid-read, Dapper's reader cleanup meets the closed reader and this
            // replaces the real error; the broken connection says what happened.
            InvalidOperationException => connection.FullState.HasFlag(ConnectionState.Broken),
            // admin_shutdown / crash_shutdown / cannot_connect_now: the backend went away mid-call.
            PostgresException pg => pg.SqlState is "57P01" or "57P02" or "57P03" || pg.SqlState.StartsWith("08", StringComparison.Ordinal),
            NpgsqlException npg => npg.InnerException is IOException or SocketException or EndOfStreamException || npg.IsTransient && npg.InnerException is not TimeoutException,
            IOException or SocketException or EndOfStreamException => true,
            _ => false,
        };
    }

    private static bool IsTimeout(Exception e, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested
        && (e is TimeoutException
            || e is NpgsqlException { InnerException: TimeoutException }
            || e is PostgresException { SqlState: PostgresErrorCodes.QueryCanceled });

    [LoggerMessage(Level = LogLevel.Warning, Message = "Database call retried (attempt {Attempt}) after {Reason}")]
    private partial void LogRetryCore(string reason, int attempt);

    private void LogRetry(string reason, int attempt) => LogRetryCore(reason, attempt);

    private sealed class ConnectionLostException(Exception inner) : Exception("the database connection was lost", inner);
}

/// <summary>The database could not be reached (after retries).</summary>
public sealed class DatabaseUnavailableException(Exception inner) : Exception("the database is unavailable", inner);

/// <summary>A statement ran past its command timeout.</summary>
public sealed class DatabaseTimeoutException(Exception inner) : Exception("the database did not answer in time", inner);

/// <summary>The connection was lost while a non-repeatable write was in flight: it may or may not have committed.</summary>
public sealed class OutcomeUnknownException(Exception inner) : Exception("the connection was lost while the change was in flight", inner);
