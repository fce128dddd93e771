namespace OrderFunctions.Core.Http;

/// <summary>
/// Every error code the API returns, with its HTTP status and problem title. The statuses mirror the database's
/// trading.error_codes (created in db/migrations/V1_5_2; later migrations add codes), which the stored functions'
/// envelopes read; ErrorCodeTableTests fails when the two disagree.
/// </summary>
public static class ErrorCodes
{
    public const string ValidationError = "VALIDATION_ERROR";
    public const string Unauthorized = "UNAUTHORIZED";
    public const string Forbidden = "FORBIDDEN";
    public const string NotFound = "NOT_FOUND";
    public const string MethodNotAllowed = "METHOD_NOT_ALLOWED";
    public const string PayloadTooLarge = "PAYLOAD_TOO_LARGE";
    public const string UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE";
    public const string UserNotFound = "USER_NOT_FOUND";
    public const string InstrumentNotFound = "INSTRUMENT_NOT_FOUND";
    public const string InstrumentNotTradable = "INSTRUMENT_NOT_TRADABLE";
    public const string AccountNotActive = "ACCOUNT_NOT_ACTIVE";
    public const string InsufficientBalance = "INSUFFICIENT_BALANCE";
    public const string InsufficientMargin = "INSUFFICIENT_MARGIN";
    public const string PriceNotMarketable = "PRICE_NOT_MARKETABLE";
    public const string IdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED";
    public const string IdempotencyKeyInUse = "IDEMPOTENCY_KEY_IN_USE";
    public const string OrderNotFound = "ORDER_NOT_FOUND";
    public const string InvalidOrderState = "INVALID_ORDER_STATE";
    public const string RollbackConflict = "ROLLBACK_CONFLICT";
    public const string JobSkipped = "JOB_SKIPPED";
    public const string ServiceUnavailable = "SERVICE_UNAVAILABLE";
    public const string Timeout = "TIMEOUT";
    public const string InternalError = "INTERNAL_ERROR";
    public const string LengthRequired = "LENGTH_REQUIRED";
    public const string PositionNotFound = "POSITION_NOT_FOUND";
    public const string PositionNotOpen = "POSITION_NOT_OPEN";
    public const string ReduceOnlyRejected = "REDUCE_ONLY_REJECTED";

    private static readonly Dictionary<string, (int Status, string Title)> Known = new(StringComparer.Ordinal)
    {
        [ValidationError] = (400, "The request is not valid"),
        [Unauthorized] = (401, "A valid bearer token is required"),
        [Forbidden] = (403, "The caller may not use this route"),
        [NotFound] = (404, "No such route"),
        [MethodNotAllowed] = (405, "The route does not accept this method"),
        [PayloadTooLarge] = (413, "The request body is too large"),
        [UnsupportedMediaType] = (415, "The request body must be JSON"),
        [UserNotFound] = (404, "The trader has no account"),
        [InstrumentNotFound] = (404, "No such instrument"),
        [InstrumentNotTradable] = (409, "The instrument is not tradable"),
        [AccountNotActive] = (409, "The account is not active"),
        [InsufficientBalance] = (400, "Insufficient balance"),
        [InsufficientMargin] = (400, "Insufficient margin"),
        [PriceNotMarketable] = (409, "The limit price is not marketable"),
        [IdempotencyKeyReused] = (422, "The Idempotency-Key was used for another request"),
        [IdempotencyKeyInUse] = (409, "The request with this Idempotency-Key has not finished"),
        [OrderNotFound] = (404, "No such order"),
        [InvalidOrderState] = (400, "The order is not in a state that allows this"),
        [RollbackConflict] = (409, "The order can no longer be rolled back exactly"),
        [JobSkipped] = (409, "Another instance is running this job"),
        [ServiceUnavailable] = (503, "The service is unavailable"),
        [Timeout] = (504, "The operation timed out"),
        [InternalError] = (500, "Internal error"),
        [LengthRequired] = (411, "The request body needs a Content-Length"),
        [PositionNotFound] = (404, "No such position"),
        [PositionNotOpen] = (409, "The position is not open"),
        [ReduceOnlyRejected] = (409, "A reduce_only order would open or add exposure"),
    };

    public static IEnumerable<string> All => Known.Keys;

    public static int StatusOf(string code) => Known.TryGetValue(code, out var known) ? known.Status : 500;

    public static string TitleOf(string code) => Known.TryGetValue(code, out var known) ? known.Title : "Error";

    /// <summary>The RFC 9457 problem type: a URN per error code (no web page is promised).</summary>
    public static string TypeOf(string code) => "urn:orderfunctions:problem:" + code.ToLowerInvariant().Replace('_', '-');
}
