using System.Diagnostics.Metrics;
using System.Text.Json.Nodes;

namespace OrderFunctions.Core.Data;

/// <summary>
/// Reads Npgsql's connection-pool instruments (its "Npgsql" meter) on demand: connections by state and the
/// pool's maximum, for the app's data source only (<see cref="OrdersDatabase.PoolName"/>; other data sources
/// in the process, e.g. a test's, are not counted). Npgsql publishes pool state only as metrics.
/// </summary>
public sealed class PoolMetrics : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Lock _gate = new();
    private Dictionary<string, long> _values = new(StringComparer.Ordinal);

    public PoolMetrics()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "Npgsql" && instrument.Name.Contains("connection", StringComparison.Ordinal))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    public JsonObject Snapshot()
    {
        lock (_gate)
        {
            _values = new Dictionary<string, long>(StringComparer.Ordinal);
            _listener.RecordObservableInstruments();
            var result = new JsonObject();
            foreach (var (name, value) in _values.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                result[name] = value;
            }

            return result;
        }
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (!instrument.IsObservable)
        {
            return;
        }

        var state = "";
        var ours = false;
        foreach (var tag in tags)
        {
            if (tag.Key.EndsWith(".state", StringComparison.Ordinal))
            {
                state = "_" + tag.Value;
            }
            else if (tag.Key.EndsWith(".pool.name", StringComparison.Ordinal))
            {
                ours = tag.Value as string == OrdersDatabase.PoolName;
            }
        }

        if (!ours)
        {
            return;
        }

        // Instrument names look like db.client.connection.count / db.client.connection.max.
        var name = instrument.Name.Replace("db.client.", "", StringComparison.Ordinal).Replace('.', '_') + state;
        _values[name] = _values.GetValueOrDefault(name) + value;
    }
}
