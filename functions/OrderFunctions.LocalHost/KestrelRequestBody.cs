using OrderFunctions.Core.Http;

namespace OrderFunctions.LocalHost;

/// <summary>
/// The request body as Core reads it. Kestrel decides about the body's HTTP framing while it is read and then throws
/// an IOException, mostly its BadHttpRequestException (a bad chunk size, a chunk without its CRLF, a body over
/// MaxRequestBodySize); this turns that into Core's <see cref="RequestBodyRefusedException"/>, so the answer is the
/// API's 400 or 413 envelope instead of a 500.
/// </summary>
internal sealed class KestrelRequestBody(Stream inner) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            return await inner.ReadAsync(buffer, cancellationToken);
        }
        catch (IOException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw Refused(e);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
    {
        try
        {
            return inner.Read(buffer, offset, count);
        }
        catch (IOException e)
        {
            throw Refused(e);
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    // BadHttpRequestException says which status Kestrel meant; a chunk size too large for Kestrel's parser arrives as a
    // plain IOException ("Bad chunk size data.") around an OverflowException.
    private static RequestBodyRefusedException Refused(IOException e) =>
        new(e is BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge }, e.Message.TrimEnd('.'), e);
}
