// One private endpoint and its DNS registration in a private DNS zone.

@description('Name of the private endpoint.')
param name string

@description('Azure region of the private endpoint (that of its virtual network).')
param location string

@description('Tags applied to the private endpoint.')
param tags object

@description('Resource id of the subnet the endpoint gets its address from.')
param subnetId string

@description('Resource id of the resource the endpoint connects to.')
param privateLinkServiceId string

@description('Sub-resource (group id) of the target: blob for storage, postgresqlServer for PostgreSQL Flexible Server.')
param groupId string

@description('Resource id of the private DNS zone the endpoint registers its address in.')
param privateDnsZoneId string

resource endpoint 'Microsoft.Network/privateEndpoints@2024-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: privateLinkServiceId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }

  resource dns 'privateDnsZoneGroups' = {
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: groupId
          properties: {
            privateDnsZoneId: privateDnsZoneId
          }
        }
      ]
    }
  }
}
