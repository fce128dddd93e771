using System.Text.RegularExpressions;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Handlers;

/// <summary>Instrument symbol rules shared by every route that names one.</summary>
public static partial class Instruments
{
    public static bool IsSymbol(string symbol) => SymbolPattern().IsMatch(symbol);

    /// <summary>A required instrument symbol, checked against the instruments.symbol rule.</summary>
    internal static string? ReadSymbol(FieldReader fields)
    {
        var symbol = fields.String("symbol", required: true, maxLength: 32);
        if (symbol is not null && !IsSymbol(symbol))
        {
            fields.Fail("symbol", "must be 1-32 characters of A-Z, 0-9 and . _ / -, starting with a letter or digit");
            return null;
        }

        return symbol;
    }

    // The same pattern as the instruments.symbol CHECK constraint.
    [GeneratedRegex("^[A-Z0-9][A-Z0-9._/-]{0,31}$", RegexOptions.CultureInvariant)]
    private static partial Regex SymbolPattern();
}
