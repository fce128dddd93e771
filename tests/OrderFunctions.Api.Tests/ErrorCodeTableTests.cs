using System.Text.RegularExpressions;
using Dapper;
using OrderFunctions.Core.Http;
using OrderFunctions.Testing;

namespace OrderFunctions.Api.Tests;

/// <summary>
/// An error code's HTTP status has one source, trading.error_codes (V1_5_2), which the stored functions' envelopes
/// read; the API's <see cref="ErrorCodes"/> is its mirror, and these tests fail the moment the two disagree.
/// </summary>
public sealed partial class ErrorCodeTableTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task The_api_and_the_database_know_the_same_error_codes_with_the_same_http_statuses()
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        var table = (await connection.QueryAsync<(string Code, int Status)>("SELECT code, http_status FROM trading.error_codes")).ToList();

        var mirror = ErrorCodes.All.Select(code => (Code: code, Status: ErrorCodes.StatusOf(code))).ToList();

        Assert.Equal(mirror.OrderBy(c => c.Code, StringComparer.Ordinal), table.OrderBy(c => c.Code, StringComparer.Ordinal));
    }

    [Fact]
    public async Task Every_error_code_a_stored_function_answers_with_is_in_the_table()
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        var sources = await connection.QueryAsync<string>("SELECT prosrc FROM pg_proc WHERE pronamespace = 'trading'::regnamespace");
        var known = (await connection.QueryAsync<string>("SELECT code FROM trading.error_codes")).ToHashSet(StringComparer.Ordinal);

        var used = sources.SelectMany(source => UsedCode().Matches(source)).Select(m => m.Groups["code"].Value).ToHashSet(StringComparer.Ordinal);

        Assert.Contains("INSUFFICIENT_MARGIN", used);
        Assert.Contains("INTERNAL_ERROR", used);
        Assert.Empty(used.Except(known).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_stored_functions_error_envelope_takes_its_status_from_the_table()
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE trading.error_codes SET http_status = 418 WHERE code = 'POSITION_NOT_OPEN'", transaction: transaction));

        var status = await connection.ExecuteScalarAsync<int>(new CommandDefinition(
            "SELECT (trading.error_envelope('POSITION_NOT_OPEN', 'm') ->> 'status')::int", transaction: transaction));

        Assert.Equal(418, status);
        await transaction.RollbackAsync();
    }

    // The codes in error_envelope('CODE', ...) calls and in execute_order's v_code := 'CODE' assignments.
    [GeneratedRegex(@"(?:error_envelope\(\s*|v_code\s*:=\s*)'(?<code>[A-Z][A-Z_]+)'")]
    private static partial Regex UsedCode();
}
