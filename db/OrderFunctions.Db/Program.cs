using OrderFunctions.Db;

const string Usage = """
    usage: OrderFunctions.Db <migrate|validate|info> [--connection "<Npgsql connection string>"]
           OrderFunctions.Db grant-app <login> [--connection "..."]
      The connection string may also come from ORDERS_MIGRATION_CONNECTION.
      migrate    apply pending versioned and changed repeatable scripts (advisory-locked: deployers never race)
      validate   fail if an applied script's text differs from the embedded one, or one is missing
      info       list every script with its state
      grant-app  grant orders_api and orders_maintenance to the login the application connects as
    exit code 0 on success; 1 with a one-line reason on failure; 2 on bad usage.
    """;

string? connection = Environment.GetEnvironmentVariable("ORDERS_MIGRATION_CONNECTION");
var positional = new List<string>();
for (var i = 0; i < args.Length; i++)
{
    if (args[i] is "--connection" or "-c")
    {
        if (i + 1 >= args.Length)
        {
            return Fail(2, "--connection needs a value");
        }

        connection = args[++i];
    }
    else if (args[i] is "-h" or "--help")
    {
        Console.WriteLine(Usage);
        return 0;
    }
    else
    {
        positional.Add(args[i]);
    }
}

if (positional.Count == 0)
{
    Console.Error.WriteLine(Usage);
    return 2;
}

try
{
    switch (positional[0])
    {
        case "migrate" when positional.Count == 1:
            var migrated = Migrator.Run(MigrationCommand.Migrate, connection ?? "", Console.WriteLine);
            Console.WriteLine($"migrate: {migrated.Applied} script(s) applied; schema at version {Head(migrated)}");
            return 0;
        case "validate" when positional.Count == 1:
            var validated = Migrator.Run(MigrationCommand.Validate, connection ?? "");
            Console.WriteLine($"validate: ok; schema at version {Head(validated)}");
            return 0;
        case "info" when positional.Count == 1:
            var info = Migrator.Run(MigrationCommand.Info, connection ?? "");
            Console.WriteLine($"{"version",-10} {"category",-12} {"installed on",-20} {"ok",-5} description");
            foreach (var m in info.Migrations)
            {
                Console.WriteLine($"{m.Version,-10} {m.Category,-12} {m.InstalledOn,-20} {(m.Success is null ? "-" : m.Success.Value ? "yes" : "NO"),-5} {m.Description}");
            }

            return 0;
        case "grant-app" when positional.Count == 2:
            Migrator.GrantApplicationRoles(connection ?? "", positional[1]);
            Console.WriteLine($"grant-app: {positional[1]} may now act as orders_api and orders_maintenance");
            return 0;
        default:
            Console.Error.WriteLine(Usage);
            return 2;
    }
}
catch (MigrationException e)
{
    return Fail(1, e.Message);
}

static int Fail(int code, string reason)
{
    Console.Error.WriteLine($"error: {reason}");
    return code;
}

static string Head(MigrationReport report) =>
    report.Migrations.Where(m => m.Success == true && m.Version.Length > 0).Select(m => m.Version).LastOrDefault() ?? "none";
