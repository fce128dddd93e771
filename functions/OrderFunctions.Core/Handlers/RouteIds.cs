using OrderFunctions.Core.Api;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Handlers;

/// <summary>The UUIDs routes carry in their path ({id}, {userId}), read the same way by every handler.</summary>
internal static class RouteIds
{
    /// <summary>The route value as a UUID, or a 400 naming it.</summary>
    public static bool TryRead(ApiContext context, string name, out Guid id, out ApiResponse error)
    {
        if (Guid.TryParseExact(context.Request.RouteValue(name), "D", out id))
        {
            error = null!;
            return true;
        }

        error = ApiResponse.Validation(name, "must be a UUID");
        return false;
    }
}
