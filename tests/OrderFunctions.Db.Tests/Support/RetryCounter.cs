using Npgsql;

namespace OrderFunctions.Db.Tests.Support;

/// <summary>Counts the retries of racing calls, as the application retries them: deadlocks and serialization failures.</summary>
internal sealed class RetryCounter
{
    private int _deadlocks;
    private int _serializationFailures;

    public int Deadlocks => _deadlocks;

    public int SerializationFailures => _serializationFailures;

    public void Count(string sqlState)
    {
        if (sqlState == PostgresErrorCodes.DeadlockDetected)
        {
            Interlocked.Increment(ref _deadlocks);
        }
        else
        {
            Interlocked.Increment(ref _serializationFailures);
        }
    }
}
