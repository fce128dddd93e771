using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Jobs;

/// <summary>
/// One publication of the chain heads in the archive container: <c>chain-heads/{yyyy}/{MM}/{dd}/{time}-{run}.ndjson.gz</c>
/// holds one line per account as trading.chain_heads() writes it (gzipped NDJSON, each line followed by "\n"), and
/// <c>….manifest.json</c> next to it, written after the data, describes it. The day folders let a reader find the
/// latest publication by listing a day, not the container's whole history; names sort by time within a day.
/// </summary>
internal sealed record ChainHeadManifest(DateTimeOffset PublishedAt, long RunId, int Accounts, string Sha256)
{
    public const string Prefix = "chain-heads/";
    private const string DataSuffix = ".ndjson.gz";
    private const string ManifestSuffix = ".manifest.json";

    public string DataBlobName => BaseName + DataSuffix;

    public string ManifestBlobName => BaseName + ManifestSuffix;

    private string BaseName => string.Create(CultureInfo.InvariantCulture,
        $"{DayPrefix(PublishedAt)}{PublishedAt.UtcDateTime:yyyyMMdd'T'HHmmssfffffff'Z'}-{RunId:D19}");

    public static string DayPrefix(DateTimeOffset day) => string.Create(CultureInfo.InvariantCulture, $"{Prefix}{day.UtcDateTime:yyyy'/'MM'/'dd}/");

    public static bool IsManifestName(string name) => name.StartsWith(Prefix, StringComparison.Ordinal) && name.EndsWith(ManifestSuffix, StringComparison.Ordinal);

    public byte[] ToUtf8() => Encoding.UTF8.GetBytes(new JsonObject
    {
        ["published_at"] = Json.Format(PublishedAt.UtcDateTime),
        ["run_id"] = RunId,
        ["accounts"] = Accounts,
        ["sha256"] = Sha256,
        ["blob_name"] = DataBlobName,
        ["format"] = "ndjson+gzip, one trading.chain_heads() line per account; sha256 of the uncompressed bytes",
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    public static ChainHeadManifest Parse(byte[] utf8, string blobName)
    {
        try
        {
            var json = JsonNode.Parse(utf8)!.AsObject();
            var manifest = new ChainHeadManifest(
                DateTimeOffset.Parse((string)json["published_at"]!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
                (long)json["run_id"]!,
                (int)json["accounts"]!,
                (string)json["sha256"]!);
            return manifest.ManifestBlobName == blobName
                ? manifest
                : throw new ArchiveIntegrityException($"manifest {blobName} describes a publication of another name");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException or ArgumentException)
        {
            throw new ArchiveIntegrityException($"manifest {blobName} is not a valid chain-heads manifest");
        }
    }
}
