using System.Runtime.CompilerServices;
using Azure;
using Azure.Identity;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using OrderFunctions.Core.Configuration;

namespace OrderFunctions.Core.Jobs;

/// <summary>
/// <see cref="IArchiveStore"/> on Azure Blob Storage: <c>ArchiveStorage__ConnectionString</c> (Azurite locally), or
/// <c>ArchiveStorage__serviceUri</c> with the managed identity (DefaultAzureCredential) in Azure. Azure SDK types and
/// errors stay in here; callers see <see cref="ArchiveStoreException"/>.
/// </summary>
public sealed class BlobArchiveStore : IArchiveStore
{
    private readonly Lazy<(BlobContainerClient Container, bool CreateIfMissing)> _client;

    public BlobArchiveStore(ArchiveStorageSettings settings, BlobClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        // Built on first use, so a host without archive settings still starts; the retention run then fails
        // with a message naming the missing setting.
        _client = new(() => Connect(settings, options));
    }

    public Task PrepareAsync(CancellationToken cancellationToken) => GuardAsync("create the container", async () =>
    {
        var (container, createIfMissing) = _client.Value;
        // Locally only: in Azure the container comes from the deployment with its immutability policy, and a
        // container created here would lack it.
        if (createIfMissing)
        {
            await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        }

        return true;
    }, cancellationToken);

    public Task<bool> CreateAsync(string name, byte[] content, string contentType, CancellationToken cancellationToken) =>
        GuardAsync("upload " + name, async () =>
        {
            try
            {
                await _client.Value.Container.GetBlobClient(name).UploadAsync(BinaryData.FromBytes(content), new BlobUploadOptions
                {
                    HttpHeaders = new BlobHttpHeaders { ContentType = contentType },
                    // Write-once: the service refuses the upload when a blob of this name exists.
                    Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
                }, cancellationToken);
                return true;
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412)
            {
                return false;
            }
        }, cancellationToken);

    public Task<byte[]?> ReadAsync(string name, CancellationToken cancellationToken) =>
        GuardAsync("read " + name, async () =>
        {
            try
            {
                var response = await _client.Value.Container.GetBlobClient(name).DownloadContentAsync(cancellationToken);
                return response.Value.Content.ToArray();
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                return null;
            }
        }, cancellationToken);

    public async IAsyncEnumerable<string> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var pages = _client.Value.Container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }, cancellationToken).AsPages();
        await using var enumerator = pages.GetAsyncEnumerator(cancellationToken);
        while (await GuardAsync("list " + prefix, async () =>
               {
                   try
                   {
                       return await enumerator.MoveNextAsync();
                   }
                   catch (RequestFailedException e) when (e.Status == 404)
                   {
                       // No container yet (nothing was ever archived here locally): no blobs.
                       return false;
                   }
               }, cancellationToken))
        {
            foreach (var item in enumerator.Current.Values)
            {
                yield return item.Name;
            }
        }
    }

    private static async Task<T> GuardAsync<T>(string operation, Func<Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call();
        }
        catch (RequestFailedException e) when (e.Status != 0)
        {
            throw new ArchiveStoreException($"blob storage could not {operation}: status {e.Status} {e.ErrorCode}", e);
        }
        catch (Exception e) when (e is RequestFailedException or AggregateException or HttpRequestException or IOException or TimeoutException
                                  || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new ArchiveStoreException($"blob storage is unreachable ({operation}): {Innermost(e).Message}", e);
        }
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }

    private static (BlobContainerClient, bool) Connect(ArchiveStorageSettings settings, BlobClientOptions? options)
    {
        if (!string.IsNullOrWhiteSpace(settings.ConnectionString))
        {
            BlobServiceClient service;
            try
            {
                service = new BlobServiceClient(settings.ConnectionString, options);
            }
            catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
            {
                // The parser's message may quote the connection string, and with it the account key.
                throw new ArchiveStoreException("ArchiveStorage__ConnectionString is not a valid Blob Storage connection string");
            }

            return (service.GetBlobContainerClient(settings.ContainerName), true);
        }

        if (!string.IsNullOrWhiteSpace(settings.ServiceUri))
        {
            if (!Uri.TryCreate(settings.ServiceUri, UriKind.Absolute, out var serviceUri))
            {
                throw new ArchiveStoreException("ArchiveStorage__serviceUri must be an absolute URI");
            }

            return (new BlobServiceClient(serviceUri, new DefaultAzureCredential(), options).GetBlobContainerClient(settings.ContainerName), false);
        }

        throw new ArchiveStoreException("archive storage is not configured: set ArchiveStorage__ConnectionString or ArchiveStorage__serviceUri",
            notConfigured: true);
    }
}
