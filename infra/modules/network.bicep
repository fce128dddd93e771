// Private networking (networkMode = 'private'): one virtual network with a subnet the function app
// integrates with and a subnet for private endpoints, plus the private DNS zones that make the
// PostgreSQL and blob host names resolve to those endpoints from inside the network.

@description('Name of the virtual network.')
param vnetName string

@description('Azure region of the virtual network.')
param location string

@description('Tags applied to the network resources.')
param tags object

@description('Address space of the virtual network (CIDR).')
param addressPrefix string

@description('CIDR of the subnet the function app integrates with; delegated to Microsoft.App/environments as Flex Consumption requires. Size it for the maximum instance count.')
param appSubnetPrefix string

@description('CIDR of the subnet that holds the private endpoints.')
param privateEndpointSubnetPrefix string

var appSubnetName = 'snet-app'
var privateEndpointSubnetName = 'snet-private-endpoints'

resource vnet 'Microsoft.Network/virtualNetworks@2024-07-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    // Subnets are declared inline: as separate child resources a redeploy of the VNet would try to remove them.
    subnets: [
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: privateEndpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource postgresZone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: 'privatelink.postgres.database.azure.com'
  location: 'global'
  tags: tags
}

resource blobZone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: 'privatelink.blob.${environment().suffixes.storage}'
  location: 'global'
  tags: tags
}

resource postgresZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: postgresZone
  name: vnet.name
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource blobZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: blobZone
  name: vnet.name
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

@description('Name of the virtual network.')
output vnetName string = vnet.name

@description('Resource id of the subnet the function app integrates with.')
output appSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, appSubnetName)

@description('Resource id of the private endpoint subnet.')
output privateEndpointSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, privateEndpointSubnetName)

@description('Resource id of the privatelink.postgres.database.azure.com zone.')
output postgresDnsZoneId string = postgresZone.id

@description('Resource id of the privatelink.blob zone.')
output blobDnsZoneId string = blobZone.id
