using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace OrderFunctions.Core.Handlers;

/// <summary>
/// An opaque keyset-pagination cursor: the (timestamp, id) of the last row of a page, tagged with the
/// listing it belongs to so a cursor from one listing is refused by another.
/// </summary>
public readonly record struct Cursor(DateTime At, Guid Id)
{
    public string Encode(string listing) =>
        Base64Url.EncodeToString(Encoding.UTF8.GetBytes(
            string.Create(CultureInfo.InvariantCulture, $"{listing}|{At.Ticks}|{Id:N}")));

    public static bool TryDecode(string? text, string listing, out Cursor cursor)
    {
        cursor = default;
        if (string.IsNullOrEmpty(text) || text.Length > 128)
        {
            return false;
        }

        try
        {
            var parts = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(text)).Split('|');
            if (parts.Length == 3 && parts[0] == listing
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                && ticks >= DateTime.MinValue.Ticks && ticks <= DateTime.MaxValue.Ticks
                && Guid.TryParseExact(parts[2], "N", out var id))
            {
                cursor = new Cursor(new DateTime(ticks, DateTimeKind.Utc), id);
                return true;
            }
        }
        catch (FormatException)
        {
        }

        return false;
    }
}
