using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrderFunctions.Testing.FunctionsHost.Rpc;

namespace OrderFunctions.Testing.FunctionsHost;

/// <summary>
/// A stand-in for the Azure Functions host that runs the real worker: it serves FunctionRpc over plaintext HTTP/2 on
/// a loopback port, starts the worker as the host does (from worker.config.json, in the app directory, with the
/// app settings as environment), performs the handshake (StartStream, WorkerInitRequest, FunctionsMetadataRequest,
/// one FunctionLoadRequest per function), and then serves HTTP on Kestrel: each request is routed by the loaded
/// functions' methods and route templates into an InvocationRequest (RpcHttp), and the InvocationResponse's RpcHttp
/// becomes the response. Timer functions are invoked with a TimerInfo payload on demand or on their CRON schedule.
/// Behaviour copied from the host on purpose: a body is forwarded only with a Content-Length (chunked bodies reach the
/// worker empty), a body over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (100 MB by default) is refused with an empty 500
/// before the worker sees it, a function that throws answers an empty 500, and no match answers an empty 404.
/// </summary>
public sealed class FunctionsWorkerHost : IAsyncDisposable
{
    public const string BodySizeLimitSetting = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT";
    public const long DefaultBodySizeLimit = 104_857_600;

    /// <summary>The version this host reports; the worker only logs it.</summary>
    public const string HostVersion = "4.1040.0.0";

    /// <summary>The source of the request spans this host starts (the Functions host's role), parents of the worker's.</summary>
    public static readonly ActivitySource RequestSource = new("OrderFunctions.Testing.FunctionsHost");

    private static readonly JsonSerializerOptions TimerJson = new() { WriteIndented = false };

    private readonly FunctionsHostOptions _options;
    private readonly WorkerLog _log;
    private readonly WorkerConnection _connection;
    private readonly string _workerId = Guid.NewGuid().ToString();
    private readonly ConcurrentQueue<InvocationRecord> _invocations = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _schedules = [];
    private readonly List<string> _failures = [];
    private int _exitRecorded;
    private WebApplication? _rpc;
    private WebApplication? _front;
    private Process? _worker;
    private HttpFunctionRouter? _router;
    private Dictionary<string, string> _capabilities = new(StringComparer.Ordinal);
    private long _bodySizeLimit = DefaultBodySizeLimit;
    private bool _terminating;

    private FunctionsWorkerHost(FunctionsHostOptions options)
    {
        _options = options;
        _log = new WorkerLog(options.Output);
        _connection = new WorkerConnection(_workerId, _log);
    }

    /// <summary>functions/OrderFunctions's output for this build configuration (the test project builds it first).</summary>
    public static string BuiltAppDirectory { get; } =
        typeof(FunctionsWorkerHost).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "WorkerAppDirectory").Value!;

    /// <summary>The HTTP front's base address.</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>Every function the worker indexed and loaded.</summary>
    public IReadOnlyList<LoadedFunction> Functions { get; private set; } = [];

    /// <summary>From starting the worker process to the last FunctionLoadResponse.</summary>
    public TimeSpan StartupTime { get; private set; }

    /// <summary>What the worker logged.</summary>
    public WorkerLog Log => _log;

    /// <summary>Every invocation so far, oldest first.</summary>
    public IReadOnlyList<InvocationRecord> Invocations => [.. _invocations];

    /// <summary>The worker process's id (to watch it, or to kill it in a crash test).</summary>
    public int WorkerProcessId => _worker?.Id ?? 0;

    public static async Task<FunctionsWorkerHost> StartAsync(FunctionsHostOptions options, CancellationToken cancellationToken = default)
    {
        var host = new FunctionsWorkerHost(options);
        try
        {
            await host.StartCoreAsync(cancellationToken);
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    public HttpClient CreateClient() => new(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = BaseAddress };

    /// <summary>Invokes a timer function now, as its schedule would (IsPastDue says whether the occurrence was missed).</summary>
    public Task<InvocationRecord> InvokeTimerAsync(string functionName, bool isPastDue, CancellationToken cancellationToken = default)
    {
        var function = Functions.SingleOrDefault(f => f.Name == functionName && f.IsTimer)
            ?? throw new ArgumentException($"no timer function {functionName}; loaded: {string.Join(", ", Functions.Select(f => f.Name))}", nameof(functionName));
        return InvokeTimerCoreAsync(function, isPastDue, DateTime.UtcNow, cancellationToken);
    }

    /// <summary>Waits until an invocation of <paramref name="functionName"/> after <paramref name="after"/> has finished.</summary>
    public async Task<InvocationRecord> WaitForInvocationAsync(string functionName, int after, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            var found = _invocations.Skip(after).FirstOrDefault(i => i.FunctionName == functionName);
            if (found is not null)
            {
                return found;
            }

            try
            {
                await _invoked.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no invocation of {functionName} within {timeout.TotalSeconds:0} s\n{_log.Tail()}");
            }
        }
    }

    private readonly SemaphoreSlim _invoked = new(0);

    /// <summary>Fails with the worker's logs when it crashed or an invocation failed since the host started.</summary>
    public void EnsureHealthy()
    {
        // The exit is otherwise recorded when the process's exit event is observed, which can come after a failed
        // invocation has already answered the caller: a dead worker is reported whichever is seen first.
        if (_worker is { HasExited: true })
        {
            RecordUnexpectedExit();
        }

        lock (_failures)
        {
            if (_failures.Count > 0)
            {
                throw new FunctionsHostException(string.Join("\n", _failures) + "\nworker log:\n" + _log.Tail());
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _terminating = true;
        await _stopping.CancelAsync();
        if (_worker is { HasExited: false } worker)
        {
            try
            {
                // The host asks; the worker stops its host and exits. After the grace period it is killed.
                _connection.Send(new StreamingMessage { WorkerTerminate = new WorkerTerminate { GracePeriod = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(5)) } });
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await worker.WaitForExitAsync(grace.Token);
            }
            catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
            {
                worker.Kill(entireProcessTree: true);
                await worker.WaitForExitAsync();
            }
        }

        _worker?.Dispose();
        await Task.WhenAll(_schedules).ContinueWith(_ => { }, TaskScheduler.Default);
        foreach (var app in new[] { _front, _rpc })
        {
            if (app is not null)
            {
                using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
                {
                    await app.StopAsync(stop.Token);
                }

                await app.DisposeAsync();
            }
        }

        _stopping.Dispose();
    }

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        var appDirectory = Path.GetFullPath(_options.AppDirectory);
        var (executable, workerPath) = ReadWorkerConfig(appDirectory);
        var routePrefix = ReadRoutePrefix(appDirectory);
        if (_options.Settings.TryGetValue(BodySizeLimitSetting, out var limit) && limit.Length > 0)
        {
            _bodySizeLimit = long.Parse(limit, CultureInfo.InvariantCulture);
        }

        _rpc = await StartRpcServerAsync(cancellationToken);
        var rpcAddress = new Uri(_rpc.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.StartTimeout);
        var started = Stopwatch.StartNew();
        _worker = StartWorker(executable, workerPath, appDirectory, rpcAddress);
        var exited = _worker.WaitForExitAsync(_stopping.Token);
        try
        {
            await WhileWorkerRunsAsync(_connection.Started, exited, deadline.Token);

            var init = await WhileWorkerRunsAsync(_connection.RequestAsync(new StreamingMessage
            {
                WorkerInitRequest = new WorkerInitRequest { HostVersion = HostVersion, WorkerDirectory = appDirectory, FunctionAppDirectory = appDirectory },
            }, deadline.Token), exited, deadline.Token);
            RequireSuccess("WorkerInitRequest", init.WorkerInitResponse.Result);
            _capabilities = new Dictionary<string, string>(init.WorkerInitResponse.Capabilities, StringComparer.Ordinal);

            var indexed = await WhileWorkerRunsAsync(_connection.RequestAsync(new StreamingMessage
            {
                FunctionsMetadataRequest = new FunctionsMetadataRequest { FunctionAppDirectory = appDirectory },
            }, deadline.Token), exited, deadline.Token);
            var metadata = indexed.FunctionMetadataResponse;
            RequireSuccess("FunctionsMetadataRequest", metadata.Result);
            if (metadata.UseDefaultMetadataIndexing)
            {
                throw Fail("the worker asked the host to index its functions (use_default_metadata_indexing); this host only supports worker indexing");
            }

            // One FunctionLoadRequest per function, all in flight together (this worker ignores FunctionLoadRequestCollection).
            var loads = metadata.FunctionMetadataResults.Select(function =>
            {
                var load = function.Clone();
                load.Directory = appDirectory;
                return _connection.RequestAsync(new StreamingMessage
                {
                    FunctionLoadRequest = new FunctionLoadRequest { FunctionId = function.FunctionId, Metadata = load },
                }, deadline.Token);
            }).ToList();
            foreach (var (response, function) in (await WhileWorkerRunsAsync(Task.WhenAll(loads), exited, deadline.Token)).Zip(metadata.FunctionMetadataResults))
            {
                RequireSuccess($"FunctionLoadRequest {function.Name}", response.FunctionLoadResponse.Result);
            }

            StartupTime = started.Elapsed;
            Functions = metadata.FunctionMetadataResults
                .Select(f => LoadedFunction.FromMetadata(f.Name, f.FunctionId, f.EntryPoint, [.. f.RawBindings]))
                .ToList();
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw Fail($"the worker did not start within {_options.StartTimeout.TotalSeconds:0} s");
        }

        // As the host: a timer whose schedule does not resolve (an unset %SETTING%) is an error at start.
        foreach (var timer in Functions.Where(f => f.IsTimer))
        {
            _ = ResolveSchedule(timer) ?? throw Fail($"{timer.Name} has no schedule");
        }

        _ = MonitorWorkerAsync(exited);
        _router = new HttpFunctionRouter(Functions, routePrefix);
        _front = await StartFrontAsync(cancellationToken);
        BaseAddress = new Uri(_front.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single().TrimEnd('/') + "/");
        if (_options.RunTimersOnSchedule)
        {
            foreach (var timer in Functions.Where(f => f.IsTimer))
            {
                _schedules.Add(RunOnScheduleAsync(timer));
            }
        }

        _options.Output($"[functions host] worker {Path.GetFileName(workerPath)} up in {StartupTime.TotalMilliseconds:0} ms with {Functions.Count} functions; HTTP on {BaseAddress}");
    }

    private async Task<T> WhileWorkerRunsAsync<T>(Task<T> step, Task exited, CancellationToken cancellationToken)
    {
        await WhileWorkerRunsAsync((Task)step, exited, cancellationToken);
        return await step;
    }

    private async Task WhileWorkerRunsAsync(Task step, Task exited, CancellationToken cancellationToken)
    {
        var first = await Task.WhenAny(step, exited).WaitAsync(cancellationToken);
        if (first == exited && !step.IsCompleted)
        {
            throw Fail($"the worker exited with code {SafeExitCode()} during start-up");
        }

        await step;
    }

    private FunctionsHostException Fail(string message) => new($"{message}\nworker log:\n{_log.Tail()}");

    private void RequireSuccess(string step, StatusResult? result)
    {
        if (result is null || result.Status != StatusResult.Types.Status.Success)
        {
            throw Fail($"{step} failed: {result?.Status} {result?.Result} {result?.Exception?.Type}: {result?.Exception?.Message}\n{result?.Exception?.StackTrace}");
        }
    }

    private async Task MonitorWorkerAsync(Task exited)
    {
        try
        {
            await exited;
        }
        catch (OperationCanceledException)
        {
            return;
        }

        RecordUnexpectedExit();
    }

    private void RecordUnexpectedExit()
    {
        if (_terminating || Interlocked.Exchange(ref _exitRecorded, 1) == 1)
        {
            return;
        }

        var message = $"the worker process exited unexpectedly with code {SafeExitCode()}";
        _connection.Fail(message);
        Record(message);
    }

    private string SafeExitCode()
    {
        try
        {
            return _worker is { HasExited: true } w ? w.ExitCode.ToString(CultureInfo.InvariantCulture) : "?";
        }
        catch (InvalidOperationException)
        {
            return "?";
        }
    }

    private void Record(string failure)
    {
        lock (_failures)
        {
            _failures.Add(failure);
        }

        _options.Output($"[functions host] {failure}\n{_log.Tail()}");
    }

    private Process StartWorker(string executable, string workerPath, string appDirectory, Uri rpcAddress)
    {
        var startInfo = new ProcessStartInfo(executable)
        {
            WorkingDirectory = appDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
                 {
                     workerPath,
                     "--functions-uri", rpcAddress.ToString(),
                     "--functions-worker-id", _workerId,
                     "--functions-request-id", Guid.NewGuid().ToString(),
                     "--functions-grpc-max-message-length", int.MaxValue.ToString(CultureInfo.InvariantCulture),
                 })
        {
            startInfo.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in _options.Settings)
        {
            startInfo.Environment[key] = value;
        }

        startInfo.Environment["FUNCTIONS_WORKER_RUNTIME"] = "dotnet-isolated";
        startInfo.Environment["FUNCTIONS_APPLICATION_DIRECTORY"] = appDirectory;
        startInfo.Environment["FUNCTIONS_WORKER_DIRECTORY"] = appDirectory;
        var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"cannot start {executable} {workerPath}");
        process.StandardInput.Close();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line)
            {
                _log.Add("stdout", "worker", line);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line)
            {
                _log.Add("stderr", "worker", line);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private async Task<WebApplication> StartRpcServerAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2);
            kestrel.AddServerHeader = false;
        });
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = null;
            grpc.MaxSendMessageSize = null;
        });
        builder.Services.AddSingleton(_connection);
        var app = builder.Build();
        app.MapGrpcService<FunctionRpcService>();
        await app.StartAsync(cancellationToken);
        return app;
    }

    private async Task<WebApplication> StartFrontAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            var address = _options.HttpAddress;
            kestrel.Listen(address is null ? IPAddress.Loopback : IPAddress.Parse(address.Host), address?.Port ?? 0);
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = _bodySizeLimit;
        });
        var app = builder.Build();
        app.Run(HandleHttpAsync);
        await app.StartAsync(cancellationToken);
        return app;
    }

    private async Task HandleHttpAsync(HttpContext context)
    {
        var match = _router!.Match(context.Request.Method, context.Request.Path);
        if (match is not { } found)
        {
            context.Response.StatusCode = 404;
            return;
        }

        var (function, routeValues) = found;
        byte[]? body = null;
        try
        {
            // As the host: the body goes to the worker only when the request announces a length.
            if (context.Request.ContentLength > 0)
            {
                context.Features.Get<IHttpMaxRequestBodySizeFeature>()!.MaxRequestBodySize = _bodySizeLimit;
                using var buffer = new MemoryStream();
                await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
                body = buffer.ToArray();
            }
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // The Functions host's exception middleware turns Kestrel's "Request body too large" into an empty 500.
            context.Response.StatusCode = 500;
            return;
        }

        using var activity = StartRequestActivity(context, function);
        var invocation = new InvocationRequest
        {
            InvocationId = Guid.NewGuid().ToString(),
            FunctionId = function.FunctionId,
            TraceContext = TraceContext(activity, context.Request.Headers.TraceParent),
        };
        var http = ToRpcHttp(context.Request, routeValues, body);
        invocation.InputData.Add(new ParameterBinding { Name = function.TriggerBindingName, Data = new TypedData { Http = http } });
        foreach (var (name, value) in routeValues)
        {
            if (value is not null)
            {
                invocation.TriggerMetadata[name] = new TypedData { String = Convert.ToString(value, CultureInfo.InvariantCulture) };
            }
        }

        invocation.TriggerMetadata["Query"] = new TypedData { Json = JsonSerializer.Serialize(context.Request.Query.ToDictionary(q => q.Key, q => q.Value.ToString())) };
        invocation.TriggerMetadata["Headers"] = new TypedData { Json = JsonSerializer.Serialize(context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString())) };

        var response = await InvokeAsync(function, invocation, context.RequestAborted);
        if (response is null)
        {
            return;
        }

        if (response.Result.Status != StatusResult.Types.Status.Success)
        {
            context.Response.StatusCode = 500;
            return;
        }

        var result = response.ReturnValue?.Http ?? response.OutputData.FirstOrDefault(o => o.Name == "$return")?.Data?.Http;
        if (result is null)
        {
            // An HTTP function that returned no response: the host answers 204 No Content... but ours always return one.
            Record($"{function.Name} returned no HTTP response");
            context.Response.StatusCode = 500;
            return;
        }

        await WriteResponseAsync(context.Response, result, context.RequestAborted);
    }

    private Activity? StartRequestActivity(HttpContext context, LoadedFunction function)
    {
        ActivityContext.TryParse(context.Request.Headers.TraceParent, context.Request.Headers.TraceState, isRemote: true, out var parent);
        var activity = RequestSource.StartActivity($"{context.Request.Method} {function.Route}", ActivityKind.Server, parent);
        activity?.SetTag("faas.name", function.Name);
        return activity;
    }

    /// <summary>The W3C trace context the worker parents its invocation span on; never empty (the worker requires one).</summary>
    private static RpcTraceContext TraceContext(Activity? activity, string? incoming)
    {
        if (activity is not null)
        {
            return new RpcTraceContext { TraceParent = activity.Id ?? "", TraceState = activity.TraceStateString ?? "" };
        }

        // Nothing records the host's own span: a fresh span id under the caller's trace (or a new trace), as a host
        // that samples its request out would still pass on.
        var traceId = ActivityContext.TryParse(incoming, null, out var parent) ? parent.TraceId : ActivityTraceId.CreateRandom();
        var flags = parent.TraceFlags.HasFlag(ActivityTraceFlags.Recorded) ? "01" : "00";
        return new RpcTraceContext { TraceParent = $"00-{traceId}-{ActivitySpanId.CreateRandom()}-{flags}" };
    }

    private RpcHttp ToRpcHttp(HttpRequest request, Microsoft.AspNetCore.Routing.RouteValueDictionary routeValues, byte[]? body)
    {
        var nullable = _capabilities.ContainsKey("UseNullableValueDictionaryForHttp");
        var http = new RpcHttp
        {
            Method = request.Method,
            Url = $"{request.Scheme}://{request.Host}{request.Path}{request.QueryString}",
        };
        foreach (var (name, values) in request.Query)
        {
            if (nullable)
            {
                http.NullableQuery[name] = new NullableString { Value = values.ToString() };
            }
            else if (!string.IsNullOrEmpty(values.ToString()))
            {
                http.Query[name] = values.ToString();
            }
        }

        foreach (var (name, values) in request.Headers)
        {
            if (nullable)
            {
                http.NullableHeaders[name.ToLowerInvariant()] = new NullableString { Value = values.ToString() };
            }
            else
            {
                http.Headers[name.ToLowerInvariant()] = values.ToString();
            }
        }

        foreach (var (name, value) in routeValues)
        {
            if (value is not null)
            {
                var text = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
                if (nullable)
                {
                    http.NullableParams[name] = new NullableString { Value = text };
                }
                else
                {
                    http.Params[name] = text;
                }
            }
        }

        if (body is not null)
        {
            // The dotnet-isolated worker asks for raw bytes (RawHttpBodyBytes) and reads TypedData.bytes only.
            http.Body = new TypedData { Bytes = ByteString.CopyFrom(body) };
            if (!_capabilities.ContainsKey("HttpBodyOnly"))
            {
                http.RawBody = new TypedData { Bytes = ByteString.CopyFrom(body) };
            }
        }

        return http;
    }

    private static async Task WriteResponseAsync(HttpResponse response, RpcHttp http, CancellationToken cancellationToken)
    {
        response.StatusCode = int.TryParse(http.StatusCode, NumberStyles.None, CultureInfo.InvariantCulture, out var status) ? status : 200;
        foreach (var (name, value) in http.Headers)
        {
            response.Headers[name] = value;
        }

        foreach (var (name, value) in http.NullableHeaders)
        {
            response.Headers[name] = value.Value;
        }

        var bytes = http.Body?.DataCase switch
        {
            TypedData.DataOneofCase.Bytes => http.Body.Bytes.ToByteArray(),
            TypedData.DataOneofCase.Stream => http.Body.Stream.ToByteArray(),
            TypedData.DataOneofCase.String => Encoding.UTF8.GetBytes(http.Body.String),
            TypedData.DataOneofCase.Json => Encoding.UTF8.GetBytes(http.Body.Json),
            _ => [],
        };
        response.ContentLength = bytes.Length;
        await response.Body.WriteAsync(bytes, cancellationToken);
    }

    /// <summary>Sends one invocation and records it; null when the caller went away first.</summary>
    private async Task<InvocationResponse?> InvokeAsync(LoadedFunction function, InvocationRequest invocation, CancellationToken cancellationToken)
    {
        var timer = Stopwatch.StartNew();
        InvocationResponse? response = null;
        string status;
        string? error = null;
        try
        {
            if (_connection.Broken is { } broken)
            {
                throw new InvalidOperationException("the worker connection is gone: " + broken);
            }

            response = await _connection.InvokeAsync(invocation, cancellationToken);
            status = response.Result.Status.ToString();
            if (response.Result.Status == StatusResult.Types.Status.Failure)
            {
                error = $"{response.Result.Exception?.Type}: {response.Result.Exception?.Message}\n{response.Result.Exception?.StackTrace}";
                Record($"invocation {invocation.InvocationId} of {function.Name} failed: {error}");
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            status = "CancelledByClient";
        }
        catch (InvalidOperationException e)
        {
            status = "WorkerUnavailable";
            error = e.Message;
            Record($"invocation {invocation.InvocationId} of {function.Name} was not answered: {e.Message}");
            response = new InvocationResponse { InvocationId = invocation.InvocationId, Result = new StatusResult { Status = StatusResult.Types.Status.Failure } };
        }

        _invocations.Enqueue(new InvocationRecord(function.Name, invocation.InvocationId, invocation.TraceContext.TraceParent, status, error, timer.Elapsed));
        _invoked.Release();
        return response;
    }

    private async Task<InvocationRecord> InvokeTimerCoreAsync(LoadedFunction function, bool isPastDue, DateTime scheduled, CancellationToken cancellationToken)
    {
        var schedule = ResolveSchedule(function);
        var next = schedule?.GetNextOccurrence(scheduled, TimeZoneInfo.Utc);
        // The TimerInfo the host's timer extension serializes: the schedule, its status and IsPastDue.
        var timerInfo = new JsonObject
        {
            ["Schedule"] = new JsonObject { ["AdjustForDST"] = true },
            ["ScheduleStatus"] = new JsonObject
            {
                ["Last"] = scheduled.ToString("o", CultureInfo.InvariantCulture),
                ["Next"] = (next ?? scheduled).ToString("o", CultureInfo.InvariantCulture),
                ["LastUpdated"] = scheduled.ToString("o", CultureInfo.InvariantCulture),
            },
            ["IsPastDue"] = isPastDue,
        };
        var invocation = new InvocationRequest
        {
            InvocationId = Guid.NewGuid().ToString(),
            FunctionId = function.FunctionId,
            TraceContext = TraceContext(null, null),
        };
        invocation.InputData.Add(new ParameterBinding { Name = function.TriggerBindingName, Data = new TypedData { Json = timerInfo.ToJsonString(TimerJson) } });
        await InvokeAsync(function, invocation, cancellationToken);
        return _invocations.Last(i => i.InvocationId == invocation.InvocationId);
    }

    private Cronos.CronExpression? ResolveSchedule(LoadedFunction function)
    {
        var expression = function.Schedule ?? "";
        if (expression.Length > 2 && expression.StartsWith('%') && expression.EndsWith('%'))
        {
            var setting = expression[1..^1];
            expression = _options.Settings.TryGetValue(setting, out var value) && value.Length > 0
                ? value
                : Environment.GetEnvironmentVariable(setting) is { Length: > 0 } fromEnvironment
                    ? fromEnvironment
                    : throw Fail($"{function.Name}: its schedule '%{setting}%' does not resolve to a value (set the app setting {setting})");
        }

        return expression.Length == 0 ? null : Cronos.CronExpression.Parse(expression, Cronos.CronFormat.IncludeSeconds);
    }

    private async Task RunOnScheduleAsync(LoadedFunction timer)
    {
        var schedule = ResolveSchedule(timer) ?? throw Fail($"{timer.Name} has no schedule");
        while (!_stopping.IsCancellationRequested)
        {
            var next = schedule.GetNextOccurrence(DateTime.UtcNow, TimeZoneInfo.Utc);
            if (next is null)
            {
                return;
            }

            try
            {
                await Task.Delay(next.Value - DateTime.UtcNow, _stopping.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var late = DateTime.UtcNow - next.Value > TimeSpan.FromMinutes(1);
            await InvokeTimerCoreAsync(timer, late, next.Value, _stopping.Token);
        }
    }

    private static (string Executable, string WorkerPath) ReadWorkerConfig(string appDirectory)
    {
        var path = Path.Combine(appDirectory, "worker.config.json");
        if (!File.Exists(path))
        {
            throw new FunctionsHostException($"no worker.config.json in {appDirectory}: build functions/OrderFunctions first (dotnet build functions/OrderFunctions)");
        }

        using var config = JsonDocument.Parse(File.ReadAllText(path));
        var description = config.RootElement.GetProperty("description");
        return (description.GetProperty("defaultExecutablePath").GetString()!, description.GetProperty("defaultWorkerPath").GetString()!);
    }

    /// <summary>host.json's extensions.http.routePrefix; "api" when absent, as in the host.</summary>
    private static string ReadRoutePrefix(string appDirectory)
    {
        var path = Path.Combine(appDirectory, "host.json");
        if (!File.Exists(path))
        {
            return "api";
        }

        using var host = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        return host.RootElement.TryGetProperty("extensions", out var extensions) && extensions.TryGetProperty("http", out var http)
               && http.TryGetProperty("routePrefix", out var prefix)
            ? prefix.GetString() ?? ""
            : "api";
    }
}
