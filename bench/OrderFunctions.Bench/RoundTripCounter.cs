using System.Diagnostics;

namespace OrderFunctions.Bench;

/// <summary>
/// Counts database round trips: Npgsql starts one activity per command or batch it sends (its
/// ActivitySource "Npgsql"), and an implicit-transaction batch is one network exchange. Opening a physical
/// connection is an activity too ("CONNECT ..."): counted apart, as it happens once per pooled connection.
/// </summary>
public sealed class RoundTripCounter : IDisposable
{
    private readonly ActivityListener _listener;
    private long _count;
    private long _connects;

    public RoundTripCounter()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Npgsql",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.PropagationData,
            ActivityStopped = activity => Interlocked.Increment(
                ref activity.OperationName.StartsWith("CONNECT", StringComparison.Ordinal) ? ref _connects : ref _count),
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public long Count => Interlocked.Read(ref _count);

    public long PhysicalConnects => Interlocked.Read(ref _connects);

    public void Dispose() => _listener.Dispose();
}
