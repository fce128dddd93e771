using System.Security.Claims;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OrderFunctions.Core.Configuration;

namespace OrderFunctions.Core.Auth;

/// <summary>
/// Signs HS256 tokens with the local Auth__SigningKey: what the run command prints, and what tests and the
/// benchmark use. Useless in Azure, where an OIDC authority signs tokens and no signing key is configured.
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

        var issuedAt = now ?? DateTime.UtcNow;
        var claims = new List<Claim> { new("sub", userId.ToString()) };
        if (admin)
        {
            claims.Add(new Claim("roles", TokenValidator.AdminRole));
        }

        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = settings.Issuer,
            Audience = settings.Audience,
            Subject = new ClaimsIdentity(claims),
            IssuedAt = issuedAt,
            NotBefore = issuedAt,
            Expires = issuedAt + (lifetime ?? TimeSpan.FromHours(12)),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(key), SecurityAlgorithms.HmacSha256),
        });
    }
}
