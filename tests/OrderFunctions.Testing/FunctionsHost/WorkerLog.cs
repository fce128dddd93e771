using System.Globalization;
using System.Text;

namespace OrderFunctions.Testing.FunctionsHost;

/// <summary>
/// What the worker said: its RpcLog messages and its console output, newest last, bounded. Warnings and worse are
/// also written to the test output as they arrive; everything is replayed when a start, a load or an invocation fails.
/// </summary>
public sealed class WorkerLog(Action<string> sink)
{
    private const int Capacity = 4000;
    private readonly Queue<string> _lines = new();

    public void Add(string level, string category, string message, string? exception = null)
    {
        var line = $"{DateTime.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} {level,-11} {category}: {message}"
                   + (string.IsNullOrEmpty(exception) ? "" : Environment.NewLine + "    " + exception.ReplaceLineEndings(Environment.NewLine + "    "));
        lock (_lines)
        {
            _lines.Enqueue(line);
            if (_lines.Count > Capacity)
            {
                _lines.Dequeue();
            }
        }

        if (level is "Warning" or "Error" or "Critical" or "stderr")
        {
            sink("[functions worker] " + line);
        }
    }

    /// <summary>The last <paramref name="count"/> lines, for an error message.</summary>
    public string Tail(int count = 60)
    {
        lock (_lines)
        {
            var builder = new StringBuilder();
            foreach (var line in _lines.Skip(Math.Max(0, _lines.Count - count)))
            {
                builder.AppendLine(line);
            }

            return builder.Length == 0 ? "(the worker logged nothing)" : builder.ToString();
        }
    }

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }
}
