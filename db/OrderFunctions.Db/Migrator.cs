using System.Reflection;
using EvolveDb;
using EvolveDb.Configuration;
using Npgsql;

namespace OrderFunctions.Db;

/// <summary>
/// Applies, validates and lists the SQL migrations embedded in this assembly with Evolve.
/// Deployers call it through the command line (<see cref="Program"/>); tests call it directly.
/// </summary>
public static class Migrator
{
    public const string ProductSchema = "trading";
    public const string MetadataSchema = "evolve";
    public const string MetadataTable = "changelog";
    private const string ResourcePrefix = "OrderFunctions.Db.Migrations";

    /// <summary>The names and texts of the embedded scripts, in file-name order.</summary>
    public static IReadOnlyList<(string Name, string Sql)> Scripts { get; } = LoadScripts();

    /// <summary>Runs one Evolve command. Throws <see cref="MigrationException"/> with a one-line reason on failure.</summary>
    public static MigrationReport Run(MigrationCommand command, string connectionString, Action<string>? log = null)
    {
        var builder = ParseConnectionString(connectionString);
        using var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            connection.Open();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            throw new MigrationException($"cannot connect to {Describe(builder)}: {OneLine(e.Message)}", e);
        }

        var evolve = new Evolve(connection, log ?? (_ => { }), EvolveDb.Dialect.DBMS.PostgreSQL)
        {
            EmbeddedResourceAssemblies = [typeof(Migrator).Assembly],
            EmbeddedResourceFilters = [ResourcePrefix],
            Schemas = [MetadataSchema, ProductSchema],
            MetadataTableSchema = MetadataSchema,
            MetadataTableName = MetadataTable,
            // Two deployers racing on one database: Evolve's advisory lock makes the second wait.
            EnableClusterMode = true,
            IsEraseDisabled = true,
            MustEraseOnValidationError = false,
            TransactionMode = TransactionKind.CommitEach,
            CommandTimeout = 300,
            // Scripts may not contain ${...}; no placeholder substitution is wanted.
            PlaceholderPrefix = "${{__none__",
        };

        try
        {
            switch (command)
            {
                case MigrationCommand.Migrate:
                    evolve.Migrate();
                    return new MigrationReport(evolve.NbMigration, evolve.AppliedMigrations.ToList(), Info(evolve));
                case MigrationCommand.Validate:
                    evolve.Validate();
                    return new MigrationReport(0, [], Info(evolve));
                case MigrationCommand.Info:
                    return new MigrationReport(0, [], Info(evolve));
                default:
                    throw new ArgumentOutOfRangeException(nameof(command), command, null);
            }
        }
        catch (EvolveValidationException e)
        {
            throw new MigrationException($"validation failed: {OneLine(e.Message)}", e);
        }
        catch (EvolveException e)
        {
            throw new MigrationException(DescribeFailure(e, connection), e);
        }
    }

    /// <summary>Grants the runtime roles to the login the application connects with (deploy step after migrate).</summary>
    public static void GrantApplicationRoles(string connectionString, string login)
    {
        var builder = ParseConnectionString(connectionString);
        using var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            connection.Open();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            throw new MigrationException($"cannot connect to {Describe(builder)}: {OneLine(e.Message)}", e);
        }

        using var command = new NpgsqlCommand("SELECT trading.grant_application_roles(@login)", connection);
        command.Parameters.AddWithValue("login", login);
        try
        {
            command.ExecuteNonQuery();
        }
        catch (PostgresException e)
        {
            throw new MigrationException($"cannot grant the application roles to {login}: {OneLine(e.MessageText)}", e);
        }
    }

    private static IReadOnlyList<MigrationInfo> Info(Evolve evolve) =>
        evolve.Info()
            .Select(m => new MigrationInfo(m.Version ?? "", m.Description ?? "", m.Category ?? "", m.InstalledOn is { } at ? at.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture) : "", m.Success, m.Checksum ?? ""))
            .ToList();

    private static NpgsqlConnectionStringBuilder ParseConnectionString(string connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new MigrationException("no connection string: pass --connection \"Host=...;Database=...\" or set ORDERS_MIGRATION_CONNECTION");
        }

        try
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString)
            {
                // Migrations must see server errors as they happen, not from a pooled connection's earlier state.
                Pooling = false,
            };
            if (string.IsNullOrEmpty(builder.Host))
            {
                throw new MigrationException("invalid connection string: it names no Host");
            }

            return builder;
        }
        catch (ArgumentException e)
        {
            throw new MigrationException($"invalid connection string: {OneLine(e.Message)}", e);
        }
    }

    private static string Describe(NpgsqlConnectionStringBuilder b) => $"{b.Host}:{b.Port}/{b.Database}";

    private static string DescribeFailure(EvolveException e, NpgsqlConnection connection)
    {
        var postgres = FindInner<PostgresException>(e);
        var script = Scripts.FirstOrDefault(s => e.Message.Contains(s.Name, StringComparison.Ordinal));
        if (postgres is null)
        {
            return script.Name is null ? OneLine(e.Message) : $"{script.Name}: {OneLine(e.Message)}";
        }

        var where = script.Name is null ? "migration" : $"{script.Name}:{LocateFailure(connection, script.Sql) ?? 1}";
        return $"{where}: {postgres.SqlState} {OneLine(postgres.MessageText)}";
    }

    /// <summary>
    /// Npgsql does not say which statement of a multi-statement command failed, so replay the script one statement
    /// at a time in a transaction that is always rolled back; the first failure is the line to report.
    /// </summary>
    private static int? LocateFailure(NpgsqlConnection connection, string script)
    {
        try
        {
            using var transaction = connection.BeginTransaction();
            try
            {
                foreach (var (start, text) in SplitStatements(script))
                {
#pragma warning disable CA2100 // the text is the embedded migration script's own
                    using var command = new NpgsqlCommand(text, connection, transaction);
#pragma warning restore CA2100
                    try
                    {
                        command.ExecuteNonQuery();
                    }
                    catch (PostgresException e)
                    {
                        var offset = start + (e.Position > 0 ? e.Position - 1 : FirstToken(text));
                        return script.AsSpan(0, Math.Min(offset, script.Length)).Count('\n') + 1;
                    }
                }
            }
            finally
            {
                transaction.Rollback();
            }
        }
        catch (NpgsqlException)
        {
        }

        return null;
    }

    /// <summary>Where a statement's first token starts, past blank space and comments.</summary>
    private static int FirstToken(string statement)
    {
        var i = 0;
        while (i < statement.Length)
        {
            if (char.IsWhiteSpace(statement[i]))
            {
                i++;
            }
            else if (statement.AsSpan(i).StartsWith("--"))
            {
                i = statement.IndexOf('\n', i) is var end and >= 0 ? end + 1 : statement.Length;
            }
            else if (statement.AsSpan(i).StartsWith("/*"))
            {
                i = statement.IndexOf("*/", i + 2, StringComparison.Ordinal) is var end and >= 0 ? end + 2 : statement.Length;
            }
            else
            {
                break;
            }
        }

        return i;
    }

    /// <summary>Top-level statements with their offsets: semicolons inside quotes, dollar quotes and comments do not split.</summary>
    private static IEnumerable<(int Start, string Text)> SplitStatements(string sql)
    {
        var start = 0;
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            if (c == '-' && i + 1 < sql.Length && sql[i + 1] == '-')
            {
                i = sql.IndexOf('\n', i) is var end and >= 0 ? end + 1 : sql.Length;
            }
            else if (c == '/' && i + 1 < sql.Length && sql[i + 1] == '*')
            {
                i = sql.IndexOf("*/", i + 2, StringComparison.Ordinal) is var end and >= 0 ? end + 2 : sql.Length;
            }
            else if (c is '\'' or '"')
            {
                i = sql.IndexOf(c, i + 1) is var end and >= 0 ? end + 1 : sql.Length;
            }
            else if (c == '$' && System.Text.RegularExpressions.Regex.Match(sql[i..], @"^\$[A-Za-z_]*\$") is { Success: true } tag)
            {
                i = sql.IndexOf(tag.Value, i + tag.Length, StringComparison.Ordinal) is var end and >= 0 ? end + tag.Length : sql.Length;
            }
            else if (c == ';')
            {
                yield return (start, sql[start..(i + 1)]);
                start = ++i;
            }
            else
            {
                i++;
            }
        }

        if (sql[start..].Trim().Length > 0)
        {
            yield return (start, sql[start..]);
        }
    }

    private static T? FindInner<T>(Exception e) where T : Exception
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is T match)
            {
                return match;
            }
        }

        return null;
    }

    private static string OneLine(string s) => string.Join(' ', s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static List<(string, string)> LoadScripts()
    {
        var assembly = typeof(Migrator).Assembly;
        return assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(ResourcePrefix + ".", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n => (n[(ResourcePrefix.Length + 1)..], Read(assembly, n)))
            .ToList();
    }

    private static string Read(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}

public enum MigrationCommand
{
    Migrate,
    Validate,
    Info,
}

public sealed record MigrationInfo(string Version, string Description, string Category, string InstalledOn, bool? Success, string Checksum);

public sealed record MigrationReport(int Applied, IReadOnlyList<string> AppliedScripts, IReadOnlyList<MigrationInfo> Migrations);

public sealed class MigrationException : Exception
{
    public MigrationException(string message) : base(message)
    {
    }

    public MigrationException(string message, Exception inner) : base(message, inner)
    {
    }

    public MigrationException()
    {
    }
}
