using System.Globalization;
using Microsoft.Extensions.Configuration;
using OrderFunctions.Core.Jobs;

namespace OrderFunctions.Core.Configuration;

/// <summary>
/// Every setting the application reads, with its default. Keys use the double-underscore form of
/// environment variables and app settings (<c>Database__ConnectionString</c> is <c>Database:ConnectionString</c>).
/// local.settings.sample.json lists the same keys (tests/OrderFunctions.Infra.Tests checks it, and infra/main.bicep).
/// </summary>
public sealed record OrderFunctionsSettings
{
    public required DatabaseSettings Database { get; init; }
    public required AuthSettings Auth { get; init; }
    public required MaintenanceSettings Maintenance { get; init; }
    public required ArchiveStorageSettings ArchiveStorage { get; init; }
    public required RiskSettings Risk { get; init; }

    /// <summary>Each registered job's CRON schedule, by job name (from its setting, else its default).</summary>
    public required IReadOnlyDictionary<string, string> JobSchedules { get; init; }

    /// <summary>Browser origins allowed to call the API (<see cref="Http.Cors.AllowedOriginsSetting"/>); empty allows none.</summary>
    public IReadOnlyList<string> CorsAllowedOrigins { get; init; } = [];

    /// <summary>The setting keys as they appear in app settings, for documentation and tests.</summary>
    public static IReadOnlyList<string> Keys { get; } =
    [
        "Database__ConnectionString", "Database__UseEntraAuthentication", "Database__CommandTimeoutSeconds", "Database__MaxRetries",
        "Auth__Issuer", "Auth__Audience", "Auth__SigningKey", "Auth__Authority",
        "Auth__TraderIdClaim", "Auth__RequiredScope", "Auth__RequireHttpsMetadata",
        .. MaintenanceJobs.All.Select(j => j.ScheduleSetting),
        "Maintenance__OrphanThresholdMinutes", "Maintenance__AuditLogRetentionDays", "Maintenance__ErrorLogRetentionDays",
        "Maintenance__RetentionBatchSize",
        "ArchiveStorage__ConnectionString", "ArchiveStorage__serviceUri", "ArchiveStorage__ContainerName",
        Http.Cors.AllowedOriginsSetting.Replace(":", "__", StringComparison.Ordinal),
        "Risk__MarginCallLevel", "Risk__StopOutLevel", "Risk__CloseBatchSize",
    ];

    public static OrderFunctionsSettings Load(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return new OrderFunctionsSettings
        {
            Database = new DatabaseSettings
            {
                ConnectionString = configuration["Database:ConnectionString"] ?? "",
                UseEntraAuthentication = Bool(configuration, "Database:UseEntraAuthentication", false),
                CommandTimeoutSeconds = Int(configuration, "Database:CommandTimeoutSeconds", 15, 1, 600),
                MaxRetries = Int(configuration, "Database:MaxRetries", 8, 0, 20),
            },
            Auth = new AuthSettings
            {
                Issuer = configuration["Auth:Issuer"] ?? "",
                Audience = configuration["Auth:Audience"] ?? "",
                SigningKey = configuration["Auth:SigningKey"] ?? "",
                Authority = configuration["Auth:Authority"] ?? "",
                TraderIdClaim = NonEmpty(configuration["Auth:TraderIdClaim"], AuthSettings.DefaultTraderIdClaim),
                RequiredScope = (configuration["Auth:RequiredScope"] ?? "").Trim(),
                RequireHttpsMetadata = Bool(configuration, "Auth:RequireHttpsMetadata", true),
            },
            Maintenance = new MaintenanceSettings
            {
                OrphanThresholdMinutes = Int(configuration, "Maintenance:OrphanThresholdMinutes", 10, 1, 10_000),
                AuditLogRetentionDays = Int(configuration, "Maintenance:AuditLogRetentionDays", 2557, 1, 100_000),
                ErrorLogRetentionDays = Int(configuration, "Maintenance:ErrorLogRetentionDays", 90, 1, 100_000),
                RetentionBatchSize = Int(configuration, "Maintenance:RetentionBatchSize", 5000, 1, 100_000),
            },
            ArchiveStorage = new ArchiveStorageSettings
            {
                ConnectionString = configuration["ArchiveStorage:ConnectionString"] ?? "",
                ServiceUri = configuration["ArchiveStorage:serviceUri"] ?? "",
                ContainerName = NonEmpty(configuration["ArchiveStorage:ContainerName"], "audit-archive"),
            },
            Risk = LoadRisk(configuration),
            JobSchedules = MaintenanceJobs.All.ToDictionary(j => j.Name, j => NonEmpty(configuration[j.ScheduleSetting], j.DefaultSchedule),
                StringComparer.Ordinal),
            CorsAllowedOrigins = Http.Cors.ParseOrigins(configuration[Http.Cors.AllowedOriginsSetting]),
        };
    }

    /// <summary>The CRON schedule of a registered job.</summary>
    public string ScheduleOf(string job) => JobSchedules.TryGetValue(job, out var schedule)
        ? schedule
        : throw new ArgumentOutOfRangeException(nameof(job), job, "no maintenance job has this name");

    private static string NonEmpty(string? value, string fallback) => string.IsNullOrWhiteSpace(value) ? fallback : value.Trim();

    private static RiskSettings LoadRisk(IConfiguration c)
    {
        var risk = new RiskSettings
        {
            MarginCallLevel = Level(c, "Risk:MarginCallLevel", RiskSettings.DefaultMarginCallLevel),
            StopOutLevel = Level(c, "Risk:StopOutLevel", RiskSettings.DefaultStopOutLevel),
            CloseBatchSize = Int(c, "Risk:CloseBatchSize", RiskSettings.DefaultCloseBatchSize, 1, 10_000),
        };
        return risk.StopOutLevel <= risk.MarginCallLevel
            ? risk
            : throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"Setting Risk__StopOutLevel ({risk.StopOutLevel}) must not be above Risk__MarginCallLevel ({risk.MarginCallLevel}): an account is flagged before it is stopped out."));
    }

    /// <summary>A margin level (equity ÷ used margin, 1.00 = 100 %): above 0, at most 100, at most 8 decimals.</summary>
    private static decimal Level(IConfiguration c, string key, decimal fallback)
    {
        var raw = c[key];
        if (string.IsNullOrWhiteSpace(raw))
        {
            return fallback;
        }

        if (!decimal.TryParse(raw, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value <= 0 || value > 100
            || decimal.Round(value, 8) != value)
        {
            throw new InvalidOperationException($"Setting {key.Replace(":", "__", StringComparison.Ordinal)} must be a margin level above 0 and at most 100 (1.00 = 100 %), not '{raw}'.");
        }

        return value;
    }

    private static bool Bool(IConfiguration c, string key, bool fallback)
    {
        var raw = c[key];
        if (string.IsNullOrWhiteSpace(raw))
        {
            return fallback;
        }

        return bool.TryParse(raw, out var value)
            ? value
            : throw new InvalidOperationException($"Setting {key.Replace(":", "__", StringComparison.Ordinal)} must be true or false, not '{raw}'.");
    }

    private static int Int(IConfiguration c, string key, int fallback, int min, int max)
    {
        var raw = c[key];
        if (string.IsNullOrWhiteSpace(raw))
        {
            return fallback;
        }

        if (!int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new InvalidOperationException($"Setting {key.Replace(":", "__", StringComparison.Ordinal)} must be an integer from {min} to {max}, not '{raw}'.");
        }

        return value;
    }
}

public sealed record DatabaseSettings
{
    public required string ConnectionString { get; init; }
    public bool UseEntraAuthentication { get; init; }
    public int CommandTimeoutSeconds { get; init; } = 15;
    public int MaxRetries { get; init; } = 8;
}

public sealed record AuthSettings
{
    public required string Issuer { get; init; }
    public required string Audience { get; init; }

    /// <summary>HS256 key (UTF-8 bytes, at least 32) for local development; empty when an OIDC authority signs tokens.</summary>
    public required string SigningKey { get; init; }

    /// <summary>OIDC authority (its /.well-known/openid-configuration gives the signing keys) in Azure.</summary>
    public required string Authority { get; init; }

    public const string DefaultTraderIdClaim = "sub";

    /// <summary>
    /// The claim that holds the trader's id (a UUID): <c>sub</c> for local dev tokens, <c>oid</c> for Microsoft Entra,
    /// whose <c>sub</c> is a pairwise string per application and whose <c>oid</c> is the user's object id.
    /// </summary>
    public string TraderIdClaim { get; init; } = DefaultTraderIdClaim;

    /// <summary>
    /// When set, trader routes need a delegated token whose <c>scp</c> (space-separated) holds this scope; an
    /// app-only token, which has no <c>scp</c>, is then never a trader. Empty for local dev tokens.
    /// </summary>
    public string RequiredScope { get; init; } = "";

    /// <summary>Whether the authority's metadata must come over HTTPS; false is accepted only for a loopback authority (tests).</summary>
    public bool RequireHttpsMetadata { get; init; } = true;
}

public sealed record MaintenanceSettings
{
    public int OrphanThresholdMinutes { get; init; } = 10;
    public int AuditLogRetentionDays { get; init; } = 2557;
    public int ErrorLogRetentionDays { get; init; } = 90;
    public int RetentionBatchSize { get; init; } = 5000;
}

/// <summary>
/// The margin levels (equity ÷ used margin) of the risk rules. Below <see cref="MarginCallLevel"/> an account is
/// flagged (GET /api/accounts/me); below <see cref="StopOutLevel"/> the risk engine liquidates it, largest loss
/// first, until it is back at the level. The database stores neither: every call that needs one passes it
/// (RiskEngine for the stop-out, AccountHandler for the margin call).
/// </summary>
public sealed record RiskSettings
{
    public const decimal DefaultMarginCallLevel = 1.00m;
    public const decimal DefaultStopOutLevel = 0.50m;
    public const int DefaultCloseBatchSize = 500;

    public decimal MarginCallLevel { get; init; } = DefaultMarginCallLevel;
    public decimal StopOutLevel { get; init; } = DefaultStopOutLevel;

    /// <summary>Queued closes (or stopped-out accounts) the risk engine handles per transaction: the bound on how long a batch holds its locks.</summary>
    public int CloseBatchSize { get; init; } = DefaultCloseBatchSize;
}

public sealed record ArchiveStorageSettings
{
    /// <summary>Connection string (Azurite locally); empty in Azure, where <see cref="ServiceUri"/> and a managed identity are used.</summary>
    public required string ConnectionString { get; init; }
    public required string ServiceUri { get; init; }
    public required string ContainerName { get; init; }
}
