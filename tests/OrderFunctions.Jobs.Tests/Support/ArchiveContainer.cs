using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Testing;

namespace OrderFunctions.Jobs.Tests.Support;

/// <summary>A container of one test's own on the shared Azurite, and direct reads of what the job stored there.</summary>
internal sealed class ArchiveContainer
{
    private ArchiveContainer(AzuriteServer azurite, string name)
    {
        Settings = new ArchiveStorageSettings { ConnectionString = azurite.ConnectionString, ServiceUri = "", ContainerName = name };
        Client = azurite.CreateBlobServiceClient().GetBlobContainerClient(name);
        AccountKey = ConnectionStringValue(azurite.ConnectionString, "AccountKey");
    }

    public ArchiveStorageSettings Settings { get; }

    public BlobContainerClient Client { get; }

    /// <summary>The secret of the connection string: it must never appear in a run record.</summary>
    public string AccountKey { get; }

    public static async Task<ArchiveContainer> CreateAsync() =>
        new(await AzuriteServer.GetAsync(), "audit-" + Guid.NewGuid().ToString("N"));

    public BlobArchiveStore Store() => new(Settings);

    /// <summary>A store whose endpoint is a closed port on this machine: blob storage unreachable.</summary>
    public static BlobArchiveStore UnreachableStore()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var connectionString = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" +
                               Convert.ToBase64String(Encoding.UTF8.GetBytes("not-the-real-key-but-still-secret")) +
                               $";BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;";
        var options = new BlobClientOptions { Retry = { MaxRetries = 1, Delay = TimeSpan.FromMilliseconds(10), NetworkTimeout = TimeSpan.FromSeconds(5) } };
        return new BlobArchiveStore(new ArchiveStorageSettings { ConnectionString = connectionString, ServiceUri = "", ContainerName = "unreachable" }, options);
    }

    public async Task<List<BlobItem>> BlobsAsync()
    {
        var blobs = new List<BlobItem>();
        if (!await Client.ExistsAsync())
        {
            return blobs;
        }

        await foreach (var blob in Client.GetBlobsAsync(new GetBlobsOptions()))
        {
            blobs.Add(blob);
        }

        return blobs;
    }

    public async Task<List<string>> BlobNamesAsync(string prefix) =>
        (await BlobsAsync()).Select(b => b.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();

    public async Task<byte[]> DownloadAsync(string name) => (await Client.GetBlobClient(name).DownloadContentAsync()).Value.Content.ToArray();

    public async Task<byte[]> GunzipAsync(string name)
    {
        using var gzip = new GZipStream(new MemoryStream(await DownloadAsync(name)), CompressionMode.Decompress);
        using var output = new MemoryStream();
        await gzip.CopyToAsync(output);
        return output.ToArray();
    }

    public async Task<JsonObject> ManifestAsync(string name) => JsonNode.Parse(await DownloadAsync(name))!.AsObject();

    private static string ConnectionStringValue(string connectionString, string key) =>
        connectionString.Split(';').Select(p => p.Split('=', 2)).First(p => p[0] == key)[1];
}
