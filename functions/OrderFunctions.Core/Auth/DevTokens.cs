using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OrderFunctions.Core.Configuration;

namespace OrderFunctions.Core.Auth;

/// <summary>
/// Signs HS256 tokens with the local Auth__SigningKey: what the run command prints, and what tests and the
/// benchmark use. The trader's id goes into the Auth__TraderIdClaim claim, Auth__RequiredScope (when set) into
/// <c>scp</c>, and the admin role into <c>roles</c> as a JSON array, as an OIDC authority would issue them.
/// Useless in Azure, where an OIDC authority signs tokens and no signing key is configured.
/// </summary>
public static class DevTokens
{
    public static string Create(AuthSettings settings, Guid userId, bool admin = false, TimeSpan? lifetime = null, DateTime? now = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var key = Encoding.UTF8.GetBytes(settings.SigningKey ?? "");
        if (key.Length < TokenValidator.MinimumKeyBytes)
        {
            throw new InvalidOperationException($"Auth__SigningKey must be at least {TokenValidator.MinimumKeyBytes} bytes to sign development tokens.");
        }

        var claimName = string.IsNullOrWhiteSpace(settings.TraderIdClaim) ? AuthSettings.DefaultTraderIdClaim : settings.TraderIdClaim.Trim();
        var claims = new Dictionary<string, object> { [claimName] = userId.ToString() };
        if (!string.IsNullOrWhiteSpace(settings.RequiredScope))
        {
            claims["scp"] = settings.RequiredScope.Trim();
        }

        if (admin)
        {
            claims["roles"] = new[] { TokenValidator.AdminRole };
        }

        var issuedAt = now ?? DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = settings.Issuer,
            Audience = settings.Audience,
            Claims = claims,
            IssuedAt = issuedAt,
            NotBefore = issuedAt,
            Expires = issuedAt + (lifetime ?? TimeSpan.FromHours(12)),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(key), SecurityAlgorithms.HmacSha256),
        });
    }
}
