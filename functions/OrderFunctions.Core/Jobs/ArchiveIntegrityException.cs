namespace OrderFunctions.Core.Jobs;

/// <summary>An archive in the store does not match what it must hold; nothing was deleted.</summary>
public sealed class ArchiveIntegrityException(string message) : Exception(message);
