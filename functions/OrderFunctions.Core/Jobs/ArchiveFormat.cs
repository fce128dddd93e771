using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Jobs;

/// <summary>
/// The archive of one batch of audit rows: <c>{table}/{first_id:D19}-{last_id:D19}.ndjson.gz</c> holds the rows as
/// gzipped NDJSON (each line as trading.audit_rows_to_archive writes it, followed by "\n", UTF-8), and
/// <c>….manifest.json</c> next to it describes them. Names follow from the batch alone, so a rerun finds
/// what an interrupted run uploaded instead of writing a second copy; zero-padding sorts them by id.
/// </summary>
internal sealed record ArchiveManifest(
    string Table, long FirstId, long LastId, int RowCount, string Sha256, DateTimeOffset Cutoff, DateTimeOffset CreatedAt)
{
    private const string DataSuffix = ".ndjson.gz";
    private const string ManifestSuffix = ".manifest.json";

    public string DataBlobName => BaseName(Table, FirstId, LastId) + DataSuffix;

    public string ManifestBlobName => BaseName(Table, FirstId, LastId) + ManifestSuffix;

    public static string Prefix(string table) => table + "/";

    /// <summary>The id range a manifest blob's name claims, for names of <paramref name="table"/>'s manifests.</summary>
    public static bool TryParseManifestName(string table, string name, out long firstId, out long lastId)
    {
        firstId = lastId = 0;
        var prefix = Prefix(table);
        if (!name.StartsWith(prefix, StringComparison.Ordinal) || !name.EndsWith(ManifestSuffix, StringComparison.Ordinal))
        {
            return false;
        }

        var range = name.AsSpan(prefix.Length, name.Length - prefix.Length - ManifestSuffix.Length);
        var dash = range.IndexOf('-');
        return dash > 0
               && long.TryParse(range[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out firstId)
               && long.TryParse(range[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out lastId)
               && firstId <= lastId;
    }

    /// <summary>The same batch: table, range, row count and hash (cutoff and creation time may differ between attempts).</summary>
    public bool DescribesSameRows(ArchiveManifest other) =>
        Table == other.Table && FirstId == other.FirstId && LastId == other.LastId && RowCount == other.RowCount
        && string.Equals(Sha256, other.Sha256, StringComparison.Ordinal);

    public JsonObject ToJson() => new()
    {
        ["table"] = Table,
        ["first_id"] = FirstId,
        ["last_id"] = LastId,
        ["row_count"] = RowCount,
        ["sha256"] = Sha256,
        ["cutoff"] = Json.Format(Cutoff.UtcDateTime),
        ["created_at"] = Json.Format(CreatedAt.UtcDateTime),
        ["blob_name"] = DataBlobName,
        ["format"] = "ndjson+gzip; sha256 of the uncompressed bytes",
    };

    public byte[] ToUtf8() => Encoding.UTF8.GetBytes(ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    public static ArchiveManifest Parse(byte[] utf8, string blobName)
    {
        try
        {
            var json = JsonNode.Parse(utf8)!.AsObject();
            return new ArchiveManifest(
                (string)json["table"]!,
                (long)json["first_id"]!,
                (long)json["last_id"]!,
                (int)json["row_count"]!,
                (string)json["sha256"]!,
                DateTimeOffset.Parse((string)json["cutoff"]!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
                DateTimeOffset.Parse((string)json["created_at"]!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException or ArgumentException)
        {
            throw new ArchiveIntegrityException($"manifest {blobName} is not a valid archive manifest");
        }
    }

    /// <summary>The NDJSON bytes of the lines: each line followed by "\n", UTF-8.</summary>
    public static byte[] Ndjson(IEnumerable<string> lines)
    {
        var text = new StringBuilder();
        foreach (var line in lines)
        {
            text.Append(line).Append('\n');
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }

    public static string Sha256Hex(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));

    public static byte[] Gzip(byte[] content)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(content);
        }

        return output.ToArray();
    }

    public static byte[] Gunzip(byte[] compressed, string blobName)
    {
        try
        {
            using var input = new GZipStream(new MemoryStream(compressed), CompressionMode.Decompress);
            using var output = new MemoryStream();
            input.CopyTo(output);
            return output.ToArray();
        }
        catch (InvalidDataException)
        {
            throw new ArchiveIntegrityException($"archive {blobName} is not valid gzip");
        }
    }

    private static string BaseName(string table, long firstId, long lastId) =>
        string.Create(CultureInfo.InvariantCulture, $"{table}/{firstId:D19}-{lastId:D19}");
}
