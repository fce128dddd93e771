using System.Globalization;

namespace OrderFunctions.Core.Http;

/// <summary>
/// Reads a decimal from its text without rounding it. <c>decimal.Parse</c> rounds past 28-29 significant digits
/// (0.0100000000000000000000000000009 becomes 0.01) and ignores trailing NUL characters ("0.01\u0000" becomes 0.01),
/// so the text is judged first, character by character: its grammar, how many decimals it really has (the exponent
/// applied, trailing zeros not counted) and how many integer digits. Only a number within both limits is converted,
/// and then it has at most the digits a decimal holds exactly.
/// </summary>
public static class ExactDecimal
{
    public enum Problem
    {
        None,
        NotANumber,
        TooManyDecimals,
        TooLarge,
    }

    /// <summary>
    /// Parses <c>[+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?</c>, the JSON number grammar plus a leading
    /// "+" and a bare point for numeric strings, with nothing before or after it (no whitespace, no NUL).
    /// </summary>
    public static Problem TryParse(string text, int maxDecimals, int maxIntegerDigits, out decimal value)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = 0;
        var i = 0;
        var negative = false;
        if (i < text.Length && text[i] is '+' or '-')
        {
            negative = text[i] == '-';
            i++;
        }

        var integerStart = i;
        while (i < text.Length && char.IsAsciiDigit(text[i]))
        {
            i++;
        }

        var integerPart = text[integerStart..i];
        var fraction = "";
        if (i < text.Length && text[i] == '.')
        {
            var fractionStart = ++i;
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                i++;
            }

            fraction = text[fractionStart..i];
        }

        if (integerPart.Length == 0 && fraction.Length == 0)
        {
            return Problem.NotANumber;
        }

        // The exponent saturates far beyond any limit here, so a thousand-digit exponent cannot overflow.
        const long Saturated = 1_000_000;
        long exponent = 0;
        if (i < text.Length && text[i] is 'e' or 'E')
        {
            i++;
            var negativeExponent = false;
            if (i < text.Length && text[i] is '+' or '-')
            {
                negativeExponent = text[i] == '-';
                i++;
            }

            var exponentStart = i;
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                exponent = Math.Min(Saturated, exponent * 10 + (text[i] - '0'));
                i++;
            }

            if (i == exponentStart)
            {
                return Problem.NotANumber;
            }

            exponent = negativeExponent ? -exponent : exponent;
        }

        if (i != text.Length)
        {
            return Problem.NotANumber;
        }

        // value = digits × 10^power, with no leading or trailing zeros in digits.
        var digits = (integerPart + fraction).TrimStart('0');
        var power = exponent - fraction.Length;
        var significant = digits.TrimEnd('0');
        power += digits.Length - significant.Length;
        digits = significant;
        if (digits.Length == 0)
        {
            return Problem.None;
        }

        if (-power > maxDecimals)
        {
            return Problem.TooManyDecimals;
        }

        var integerDigits = digits.Length + power;
        if (integerDigits > maxIntegerDigits)
        {
            return Problem.TooLarge;
        }

        var exact = power >= 0
            ? digits + new string('0', (int)power)
            : integerDigits > 0
                ? string.Concat(digits.AsSpan(0, (int)integerDigits), ".", digits.AsSpan((int)integerDigits))
                : "0." + new string('0', (int)-integerDigits) + digits;
        value = decimal.Parse(exact, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
        value = negative ? -value : value;
        return Problem.None;
    }

    /// <summary>The integer digits of <paramref name="bound"/>: no number below it has more (1e12 has 13).</summary>
    public static int IntegerDigitsOf(decimal bound) =>
        decimal.Truncate(Math.Abs(bound)).ToString(CultureInfo.InvariantCulture).Length;
}
