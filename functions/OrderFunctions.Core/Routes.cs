namespace OrderFunctions.Core;

/// <summary>
/// Every HTTP route of the API, relative to the <c>api/</c> prefix. Both hosts (the Functions triggers and
/// LocalHost) use these constants, so they cannot drift apart.
/// </summary>
public static class Routes
{
    public const string Prefix = "api";

    public const string Orders = "orders";
    public const string OrderById = "orders/{id}";
    public const string OrderRollback = "orders/{id}/rollback";
    public const string TransactionIntegrity = "transactions/{id}/integrity";
    public const string AccountMe = "accounts/me";
    public const string Positions = "positions";
    public const string Trades = "trades";
    public const string Strategies = "strategies";
    public const string Health = "health";
    public const string AdminInstruments = "admin/instruments";
    public const string AdminDeposits = "admin/accounts/{userId}/deposits";
    public const string AdminPositionsSync = "admin/positions/sync";
    public const string AdminMaintenance = "admin/maintenance/{job}";
}

/// <summary>Names of the timer jobs and the settings that hold their CRON schedules (NCRONTAB, six fields).</summary>
public static class Schedules
{
    public const string OrphanScanSetting = "ORPHAN_SCAN_SCHEDULE";
    public const string AuditRetentionSetting = "AUDIT_RETENTION_SCHEDULE";

    /// <summary>The Functions binding expressions: <c>%SETTING%</c> is resolved from app settings by the host.</summary>
    public const string OrphanScan = "%" + OrphanScanSetting + "%";
    public const string AuditRetention = "%" + AuditRetentionSetting + "%";

    public const string OrphanScanDefault = "0 */15 * * * *";
    public const string AuditRetentionDefault = "0 30 2 * * *";
}

public static class JobNames
{
    public const string OrphanScan = "orphan-scan";
    public const string AuditRetention = "audit-retention";

    public static IReadOnlyList<string> All { get; } = [OrphanScan, AuditRetention];
}
