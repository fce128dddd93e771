namespace OrderFunctions.Core.Jobs;

/// <summary>The archive store failed or could not be reached; the message says how, without credentials.</summary>
public sealed class ArchiveStoreException(string message, Exception? inner = null, bool notConfigured = false) : Exception(message, inner)
{
    /// <summary>No archive storage setting is set at all (a local host without Azurite), as opposed to a store that fails.</summary>
    public bool NotConfigured { get; } = notConfigured;
}
