using OrderFunctions.Api.Tests.Support;

namespace OrderFunctions.Api.Tests;

/// <summary>Requests no route serves still get the envelope as a problem document.</summary>
public sealed class RoutingTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Theory]
    [InlineData("GET", "/api/nothing-here")]
    [InlineData("GET", "/api/orders/4f0c8a52-6b1f-4c55-9a53-0d7c1e8f2a11/fills")]
    [InlineData("POST", "/api/admin")]
    [InlineData("GET", "/")]
    public async Task Unknown_route_is_404_NOT_FOUND(string method, string path)
    {
        var result = await api.SendAsync(new HttpMethod(method), path, api.AdminToken);

        result.AssertProblem(404, "NOT_FOUND");
    }

    [Theory]
    [InlineData("DELETE", "/api/orders")]
    [InlineData("PUT", "/api/orders/4f0c8a52-6b1f-4c55-9a53-0d7c1e8f2a11")]
    [InlineData("PATCH", "/api/accounts/me")]
    [InlineData("GET", "/api/admin/instruments")]
    [InlineData("POST", "/api/health")]
    public async Task Known_route_with_another_method_is_405_METHOD_NOT_ALLOWED(string method, string path)
    {
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.SendAsync(new HttpMethod(method), path, api.AdminToken, new { });

        result.AssertProblem(405, "METHOD_NOT_ALLOWED");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }
}
