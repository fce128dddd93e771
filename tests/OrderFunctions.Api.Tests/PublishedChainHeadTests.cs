using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Testing;
using static OrderFunctions.Api.Tests.Support.TestInstruments;

namespace OrderFunctions.Api.Tests;

/// <summary>
/// GET /api/transactions/{id}/integrity compares the trader's chains with the heads last published to the write-once
/// archive (here a real Azurite): an owner who rewrites the execution log and recomputes every hash leaves the
/// database's own checks passing, and published_chain_head names the rewrite.
/// </summary>
public sealed class PublishedChainHeadTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Integrity_names_published_chain_head_when_the_owner_rewrote_and_rehashed_the_history()
    {
        // Arrange: LocalHost with an archive; a trader's orders; the heads published through the admin route
        var azurite = await AzuriteServer.GetAsync();
        await using var host = await ApiFixture.StartHostAsync(api.AppConnectionString, new Dictionary<string, string>
        {
            ["ArchiveStorage__ConnectionString"] = azurite.ConnectionString,
            ["ArchiveStorage__ContainerName"] = "heads-" + Guid.NewGuid().ToString("N"),
        });
        using var client = host.CreateClient();
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var order = await api.ExecutedOrderAsync(token, EurUsd.Symbol, "buy", 0.1m);
        await api.ExecutedOrderAsync(token, EurUsd.Symbol, "sell", 0.05m);
        var path = $"/api/transactions/{order.GetProperty("transaction_id").GetString()}/integrity";
        var publish = await SendAsync(client, HttpMethod.Post, "/api/admin/maintenance/chain-heads", api.AdminToken);
        publish.AssertSuccess(200);
        var before = (await SendAsync(client, HttpMethod.Get, path, token)).AssertSuccess(200);

        // Act
        await OwnerTampering.RewriteAndRehashExecutionLogAsync(api.AdminConnectionString, trader, 1);
        var after = (await SendAsync(client, HttpMethod.Get, path, token)).AssertSuccess(200);

        // Assert: valid before, and after only published_chain_head fails
        Assert.True(before.GetProperty("valid").GetBoolean(), before.GetRawText());
        var compared = before.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "published_chain_head");
        Assert.StartsWith("matches chain-heads/", compared.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.False(after.GetProperty("valid").GetBoolean(), after.GetRawText());
        Assert.Equal(["published_chain_head"], after.GetProperty("checks").EnumerateArray()
            .Where(c => !c.GetProperty("passed").GetBoolean()).Select(c => c.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task Integrity_says_it_compared_nothing_when_no_heads_are_published()
    {
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var order = await api.ExecutedOrderAsync(token, EurUsd.Symbol, "buy", 0.1m);

        var result = await api.GetAsync($"/api/transactions/{order.GetProperty("transaction_id").GetString()}/integrity", token);

        var check = result.AssertSuccess(200).GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "published_chain_head");
        Assert.True(check.GetProperty("passed").GetBoolean());
        Assert.StartsWith("not compared", check.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private static async Task<ApiResult> SendAsync(HttpClient client, HttpMethod method, string path, string token)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new("Bearer", token);
        using var response = await client.SendAsync(request);
        return await ApiResult.ReadAsync(response);
    }
}
