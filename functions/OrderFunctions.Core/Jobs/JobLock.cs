using System.Data;
using Dapper;
using Npgsql;

namespace OrderFunctions.Core.Jobs;

/// <summary>
/// A job's PostgreSQL advisory lock, held for the run by an open transaction on a connection of its own.
/// Transaction-scoped, not session-scoped: behind PgBouncer in transaction mode a session lock could stay
/// with a server connection that another client gets next. The transaction writes nothing, so it takes no
/// transaction id and holds back no vacuum horizon; committing it (or losing the connection) releases the lock.
/// </summary>
internal sealed class JobLock : IAsyncDisposable
{
    private const string TryLockSql = "SELECT pg_try_advisory_xact_lock(@Key)";

    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _transaction;

    private JobLock(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        _connection = connection;
        _transaction = transaction;
    }

    /// <summary>The lock, or null when another session holds it.</summary>
    public static async Task<JobLock?> TryAcquireAsync(NpgsqlDataSource dataSource, long key, CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        NpgsqlTransaction? transaction = null;
        try
        {
            transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
            var acquired = await connection.ExecuteScalarAsync<bool>(
                new CommandDefinition(TryLockSql, new { Key = key }, transaction, cancellationToken: cancellationToken));
            if (acquired)
            {
                return new JobLock(connection, transaction);
            }
        }
        catch
        {
            await DisposeAsync(connection, transaction);
            throw;
        }

        await DisposeAsync(connection, transaction);
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            // Not the run's token: the lock is released whether or not the run was cancelled.
            await _transaction.CommitAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            // The connection is gone, and with it the lock.
        }
        finally
        {
            await DisposeAsync(_connection, _transaction);
        }
    }

    private static async ValueTask DisposeAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction)
    {
        if (transaction is not null)
        {
            await transaction.DisposeAsync();
        }

        await connection.DisposeAsync();
    }
}
