using Npgsql;
using OrderFunctions.Core.Data;

namespace OrderFunctions.Core.Jobs;

/// <summary>
/// The one-line description of a failure that goes into maintenance_runs and findings: what failed, never a
/// connection string, key or stack trace.
/// </summary>
internal static class ErrorText
{
    private const int MaxLength = 500;

    public static string Describe(Exception e)
    {
        var text = e switch
        {
            OperationCanceledException => "cancelled",
            PostgresException pg => $"database error {pg.SqlState}: {pg.MessageText}",
            DatabaseUnavailableException or DatabaseTimeoutException or OutcomeUnknownException or ArchiveStoreException or ArchiveIntegrityException => e.Message,
            NpgsqlException npg => $"database error: {npg.Message}",
            _ => $"{e.GetType().Name}: {e.Message}",
        };
        var firstLine = text.AsSpan();
        var end = firstLine.IndexOfAny('\r', '\n');
        if (end >= 0)
        {
            firstLine = firstLine[..end];
        }

        return firstLine.Length > MaxLength ? string.Concat(firstLine[..MaxLength], "…") : firstLine.ToString();
    }
}
