using Npgsql;

namespace OrderFunctions.Testing;

/// <summary>
/// What someone holding the owner role (the migration login) can do to history, and the verification must catch: with
/// the append-only triggers off, rewrite an execution-log row, then recompute every hash of the account's chain so no
/// link is broken, and move its chain checkpoint along so the database's own checks agree.
/// </summary>
public static class OwnerTampering
{
    private const string RewriteAndRehashSql = """
        CREATE FUNCTION pg_temp.rewrite_and_rehash(p_user uuid, p_seq bigint, p_move_checkpoint boolean) RETURNS void
            LANGUAGE plpgsql
        AS $$
        DECLARE
            v_row trading.execution_logs%ROWTYPE;
            v_prev bytea := trading.execution_log_genesis_hash();
        BEGIN
            UPDATE trading.execution_logs SET reason = 'rewritten by the owner' WHERE user_id = p_user AND seq = p_seq;
            FOR v_row IN SELECT * FROM trading.execution_logs WHERE user_id = p_user ORDER BY seq LOOP
                UPDATE trading.execution_logs
                SET prev_hash = v_prev,
                    row_hash = trading.execution_log_hash(v_prev, v_row.user_id, v_row.seq, v_row.order_id, v_row.event, v_row.reason,
                                                          v_row.error_code, v_row.transaction_id, v_row.details, v_row.created_at)
                WHERE user_id = p_user AND seq = v_row.seq
                RETURNING row_hash INTO v_prev;
            END LOOP;
            UPDATE trading.chain_checkpoints c SET execution_log_hash = e.row_hash
            FROM trading.execution_logs e
            WHERE p_move_checkpoint AND c.user_id = p_user AND e.user_id = p_user AND e.seq = c.execution_log_seq;
        END
        $$;
        SET LOCAL session_replication_role = replica;
        """;

    /// <summary>
    /// Rewrites row <paramref name="seq"/> of <paramref name="user"/>'s execution log and rehashes the whole chain, as
    /// superuser; with <paramref name="moveCheckpoint"/> also the chain checkpoint's hash.
    /// </summary>
    public static async Task RewriteAndRehashExecutionLogAsync(string adminConnectionString, Guid user, long seq, bool moveCheckpoint = true)
    {
        await using var connection = new NpgsqlConnection(adminConnectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
#pragma warning disable CA2100 // Constant texts; the values are parameters.
        await using (var create = new NpgsqlCommand(RewriteAndRehashSql, connection, transaction))
        {
            await create.ExecuteNonQueryAsync();
        }

        await using var command = new NpgsqlCommand("SELECT pg_temp.rewrite_and_rehash($1, $2, $3)", connection, transaction);
#pragma warning restore CA2100
        command.Parameters.Add(new NpgsqlParameter { Value = user });
        command.Parameters.Add(new NpgsqlParameter { Value = seq });
        command.Parameters.Add(new NpgsqlParameter { Value = moveCheckpoint });
        await command.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
    }
}
