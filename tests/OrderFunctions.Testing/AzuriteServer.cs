using System.Diagnostics;
using System.Globalization;
using Azure.Storage.Blobs;
using DotNet.Testcontainers.Builders;

namespace OrderFunctions.Testing;

/// <summary>
/// The Azurite Blob emulator of this test process, started once on first use and found in this order:
/// <c>ORDERS_TEST_AZURITE</c> (a Blob connection string), a Docker engine (Testcontainers, <see cref="Image"/>),
/// else the <c>azurite</c> npm package pinned in <c>tools/package.json</c> (<c>npm ci --prefix tools</c>).
/// </summary>
public sealed class AzuriteServer
{
    /// <summary>Pinned: a floating tag would change the emulator under the tests without a commit.</summary>
    public const string Image = "mcr.microsoft.com/azure-storage/azurite:3.35.0";

    // Azurite's well-known development account (public, the same in every emulator).
    private const string Account = "devstoreaccount1";
    private const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private const ushort BlobPort = 10000;
    private const string Kind = "azurite";

    private static readonly Lazy<Task<AzuriteServer>> Shared = new(StartAsync);

    private AzuriteServer(string connectionString, string description)
    {
        ConnectionString = connectionString;
        Description = description;
    }

    /// <summary>A Blob Storage connection string (account key auth).</summary>
    public string ConnectionString { get; }

    /// <summary>Where the emulator came from, for logs.</summary>
    public string Description { get; }

    public static Task<AzuriteServer> GetAsync() => Shared.Value;

    public BlobServiceClient CreateBlobServiceClient() => new(ConnectionString);

    private static async Task<AzuriteServer> StartAsync()
    {
        AzuriteServer server;
        if (Environment.GetEnvironmentVariable("ORDERS_TEST_AZURITE") is { Length: > 0 } configured)
        {
            server = new AzuriteServer(configured, "ORDERS_TEST_AZURITE");
        }
        else if (await DockerEngine.FindEndpointAsync() is { } endpoint)
        {
            server = await StartContainerAsync(endpoint);
        }
        else
        {
            server = await StartNpmPackageAsync();
        }

        TestLog.Write($"Azurite: {server.Description}");
        return server;
    }

    private static async Task<AzuriteServer> StartContainerAsync(string endpoint)
    {
        var container = new ContainerBuilder(Image)
            .WithCommand("azurite-blob", "--blobHost", "0.0.0.0", "--blobPort", BlobPort.ToString(CultureInfo.InvariantCulture), "--location", "/data", "--skipApiVersionCheck", "--loose", "--disableTelemetry")
            .WithPortBinding(BlobPort, assignRandomHostPort: true)
            .WithWaitStrategy(Wait.ForUnixContainer().UntilMessageIsLogged("successfully listen"))
            .Build();
        await container.StartAsync();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => container.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(30));
        var port = container.GetMappedPublicPort(BlobPort);
        var connectionString = BlobConnectionString(container.Hostname, port);
        await WaitUntilServingAsync(connectionString, stillStarting: null);
        return new AzuriteServer(connectionString, $"Testcontainers {Image} via {endpoint} on port {port}");
    }

    private static async Task<AzuriteServer> StartNpmPackageAsync()
    {
        var executable = FindNpmExecutable();
        foreach (var abandoned in ScratchDirectories.Abandoned(Kind).ToList())
        {
            ScratchDirectories.TryDelete(abandoned);
        }

        // A free port can be taken between choosing and binding it: choose again.
        for (var attempt = 1; ; attempt++)
        {
            var directory = ScratchDirectories.Create(Kind);
            var port = Commands.FreeLoopbackPort();
            var startInfo = new ProcessStartInfo(executable)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in new[] { "--blobHost", "127.0.0.1", "--blobPort", port.ToString(CultureInfo.InvariantCulture), "--location", directory, "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry" })
            {
                startInfo.ArgumentList.Add(argument);
            }

            var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"cannot start {executable}");
            var output = new List<string>();
            process.OutputDataReceived += (_, e) => Collect(output, e.Data);
            process.ErrorDataReceived += (_, e) => Collect(output, e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var watchdog = ExitWatchdog.Start(directory, ["kill", "-KILL", process.Id.ToString(CultureInfo.InvariantCulture)]);
            var connectionString = BlobConnectionString("127.0.0.1", port);
            try
            {
                await WaitUntilServingAsync(connectionString, () => process.HasExited ? $"exit code {process.ExitCode}: {Tail(output)}" : null);
            }
            catch (InvalidOperationException) when (attempt < 5 && Tail(output).Contains("EADDRINUSE", StringComparison.Ordinal))
            {
                watchdog.Release(TimeSpan.FromSeconds(30));
                continue;
            }
            catch
            {
                watchdog.Release(TimeSpan.FromSeconds(30));
                throw;
            }

            AppDomain.CurrentDomain.ProcessExit += (_, _) => watchdog.Release(TimeSpan.FromSeconds(30));
            return new AzuriteServer(connectionString, $"npm package {executable} on 127.0.0.1:{port} in {directory}");
        }
    }

    private static async Task WaitUntilServingAsync(string connectionString, Func<string?>? stillStarting)
    {
        // No SDK retries while polling: the deadline decides.
        var options = new BlobClientOptions { Retry = { MaxRetries = 0, NetworkTimeout = TimeSpan.FromSeconds(5) } };
        var client = new BlobServiceClient(connectionString, options);
        await Readiness.WaitAsync("Azurite", TimeSpan.FromSeconds(120), ct => client.GetPropertiesAsync(ct), stillStarting);
    }

    private static string FindNpmExecutable()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var tools = Path.Combine(directory.FullName, "tools");
            if (File.Exists(Path.Combine(tools, "package.json")))
            {
                var executable = Path.Combine(tools, "node_modules", ".bin", OperatingSystem.IsWindows() ? "azurite-blob.cmd" : "azurite-blob");
                return File.Exists(executable)
                    ? executable
                    : throw new InvalidOperationException($"Azurite is not installed in {tools}: run `npm ci --prefix tools` at the repository root (or run Docker, or set ORDERS_TEST_AZURITE)");
            }
        }

        throw new InvalidOperationException($"no tools/package.json above {AppContext.BaseDirectory}: run the tests from the repository, or set ORDERS_TEST_AZURITE");
    }

    private static string BlobConnectionString(string host, int port) =>
        $"DefaultEndpointsProtocol=http;AccountName={Account};AccountKey={AccountKey};BlobEndpoint=http://{host}:{port.ToString(CultureInfo.InvariantCulture)}/{Account};";

    private static void Collect(List<string> output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.Add(line);
        }
    }

    private static string Tail(List<string> output)
    {
        lock (output)
        {
            return string.Join('\n', output.TakeLast(20));
        }
    }
}
