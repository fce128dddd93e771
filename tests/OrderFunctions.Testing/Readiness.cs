namespace OrderFunctions.Testing;

/// <summary>Polls a probe until it succeeds or a deadline passes; the only way this library waits for a server.</summary>
internal static class Readiness
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    /// <param name="probe">Returns normally when ready; throws while not ready (the last failure is reported on timeout).</param>
    /// <param name="stillStarting">Returns a reason to give up at once (e.g. the server process exited), or null to keep polling.</param>
    public static async Task WaitAsync(
        string what,
        TimeSpan timeout,
        Func<CancellationToken, Task> probe,
        Func<string?>? stillStarting = null,
        CancellationToken cancellationToken = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        Exception? last = null;
        while (true)
        {
            if (stillStarting?.Invoke() is { } reason)
            {
                throw new InvalidOperationException($"{what} did not start: {reason}");
            }

            try
            {
                await probe(deadline.Token);
                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                last = e;
            }

            try
            {
                await Task.Delay(Interval, deadline.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"{what} was not ready within {timeout.TotalSeconds:0} s: {last?.Message}", last);
            }
        }
    }
}
