using System.Text;

namespace OrderFunctions.Reliability.Tests.Fuzzing;

/// <summary>One request as the fuzzer sends it: raw bytes for the body, headers exactly as given.</summary>
public sealed class FuzzRequest
{
    public required string Method { get; set; }

    public required string Path { get; set; }

    /// <summary>Request headers other than Content-Type; a name may appear twice.</summary>
    public List<KeyValuePair<string, string>> Headers { get; } = [];

    public string? ContentType { get; set; }

    public byte[]? Body { get; set; }

    /// <summary>
    /// How the body's HTTP framing is broken, or null for a well-framed request. A broken framing is sent as raw bytes
    /// over a socket to LocalHost on real Kestrel: only Kestrel parses framing, and it decides before Core reads a byte.
    /// </summary>
    public string? Framing { get; set; }

    /// <summary>Why the request must be refused with a 4xx (a mutation made it invalid on purpose, last), or null.</summary>
    public string? MustBeRefused { get; set; }

    /// <summary>The template and the mutations applied, to reproduce a failure by reading it.</summary>
    public List<string> Mutations { get; } = [];

    public required string Template { get; init; }

    /// <summary>
    /// A header value a real HTTP server refuses before any application sees it (Kestrel: control characters, bytes
    /// outside ASCII): an in-memory test server passes it on, so only the run over sockets meets the refusal.
    /// </summary>
    public bool HasHeaderValueKestrelRefuses => Headers.Any(h => h.Value.Any(c => (c < 0x20 && c != '\t') || c >= 0x7F));

    public string? Header(string name) => Headers.LastOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    public void SetHeader(string name, string? value)
    {
        Headers.RemoveAll(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase));
        if (value is not null)
        {
            Headers.Add(new KeyValuePair<string, string>(name, value));
        }
    }

    public override string ToString()
    {
        var body = Body is null ? "no body" : Body.Length > 300 ? $"{Body.Length} bytes: {Printable(Body.AsSpan(0, 300))}..." : $"{Body.Length} bytes: {Printable(Body)}";
        var headers = string.Join("; ", Headers.Select(h => $"{h.Key}: {Shorten(h.Value)}"));
        return $"{Method} {Shorten(Path)} [{Template}; {string.Join(", ", Mutations)}] Content-Type: {ContentType ?? "(none)"}; {headers}; {body}";
    }

    private static string Shorten(string text) => text.Length > 200 ? $"{text[..200]}...({text.Length} chars)" : text;

    private static string Printable(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes).Replace("\n", "\\n", StringComparison.Ordinal);
}
